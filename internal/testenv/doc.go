// Package testenv finds what end-to-end tests need on the real machine —
// container runtimes, the offline base image, the Claude Code binary — and
// skips a test with one loud line when something is missing, unless
// NANOCLAW_E2E=required, where a missing piece fails the test instead.
package testenv
