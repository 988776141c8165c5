// The three routes of tests/targets/frameworks as an Express app with the stock error
// handler (finalhandler): with NODE_ENV=development it writes err.stack into the page as
// HTML; in production only the status message. Binds an ephemeral 127.0.0.1 port and
// prints "LISTENING <port>" for the test fixture, which stops it by its PID.
'use strict';
const express = require('express');

const ITEMS = { 1: 'shoes', 2: 'socks' };
const app = express();

app.get('/', (req, res) => {
  res.send('<!doctype html><title>Acme</title><h1>Acme shop</h1>');
});

// A malformed percent-encoding in :id makes the router itself throw (400, "Failed to
// decode param"); a non-numeric id makes BigInt throw (500).
app.get('/items/:id', (req, res) => {
  res.type('text/plain').send(ITEMS[BigInt(req.params.id)]);
});

app.get('/search', (req, res) => {
  res.type('text/plain').send(`page ${BigInt(req.query.page)}`);
});

// A JSON API with the error handler many Express apps write (the express-generator
// pattern, for JSON): the stack goes out only in development, where it arrives as one JSON
// string whose newlines are the two characters \n.
const api = express.Router();
api.get('/items/:id', (req, res) => {
  res.json({ item: ITEMS[BigInt(req.params.id)] });
});
api.use((err, req, res, next) => {
  const body = { error: err.message };
  if (req.app.get('env') === 'development') body.stack = err.stack;
  res.status(err.status || 500).json(body);
});
app.use('/api', api);

const server = app.listen(0, '127.0.0.1', () => {
  process.stdout.write(`LISTENING ${server.address().port}\n`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
