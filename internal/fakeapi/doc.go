// Package fakeapi is a scripted fake of the Anthropic Messages API for
// end-to-end tests: the real Claude Code binary, given ANTHROPIC_BASE_URL
// pointing at it, talks to it offline. A test scripts what the model
// answers (text, tool calls that make Claude Code run Bash or MCP tools,
// errors), then asserts on every request Claude Code sent: system prompt,
// messages, tool results, credential headers.
//
// Only requests that are turns of Claude Code's agent loop consume the
// script (see IsMain); its side calls get a harmless default answer, so a
// script does not depend on which side calls a Claude Code version makes.
package fakeapi
