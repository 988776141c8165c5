// express-rate-limit in front of POST /api/auth/login, in the mode named by LIMIT_MODE:
//   draft-7  limit 5 per minute, RateLimit + RateLimit-Policy (draft 7) headers
//   draft-8  limit 5 per minute, the current draft's named RateLimit/RateLimit-Policy fields
//   legacy   limit 5 per minute, X-RateLimit-* headers only
//   loose    limit 1000 per minute
//   off      no limiter
// Binds an ephemeral 127.0.0.1 port and prints "LISTENING <port>" for the test fixture,
// which stops it by its PID.
'use strict';
const express = require('express');
const { rateLimit } = require('express-rate-limit');

const mode = process.env.LIMIT_MODE || 'draft-7';
const app = express();

const options = {
  'draft-7': { limit: 5, standardHeaders: 'draft-7', legacyHeaders: false },
  'draft-8': { limit: 5, standardHeaders: 'draft-8', legacyHeaders: false, identifier: 'login' },
  legacy: { limit: 5, standardHeaders: false, legacyHeaders: true },
  loose: { limit: 1000, standardHeaders: 'draft-7', legacyHeaders: false },
};
const login = (req, res) => res.status(401).json({ error: 'invalid credentials' });
if (options[mode]) {
  app.post('/api/auth/login', rateLimit({ windowMs: 60_000, ...options[mode] }), login);
} else {
  app.post('/api/auth/login', login);
}
app.get('/', (req, res) => res.send('ok'));

const server = app.listen(0, '127.0.0.1', () => {
  console.log(`LISTENING ${server.address().port}`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
