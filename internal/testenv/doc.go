// Package testenv is what tests across the tree share. It finds what
// end-to-end tests need on the real machine — container runtimes, the
// offline base image, the Claude Code binary — and skips a test with one
// loud line when something is missing, unless NANOCLAW_E2E=required, where a
// missing piece fails the test instead. It also holds the few helpers that
// tests of several packages wrote alike: a store in a test's directory, a
// buffer goroutines may log into, an HTTP client for a unix socket.
//
// It imports the store, so the store's own tests cannot use it.
package testenv
