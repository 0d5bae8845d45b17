// Package ipc is the contract between the host and nanoclaw-agent inside a
// group's container: the names, paths and JSON bodies that travel over the
// group's gateway socket. Both sides import it, so they cannot drift apart.
//
// Everything the container may ask of the host is an HTTP request on that one
// unix socket. The host knows the caller's group from which socket the request
// arrived on; nothing in these bodies names a group or chat for
// authorization, and a body with fields it does not define is rejected.
package ipc

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"unicode/utf8"
)

// Where things are inside the container.
const (
	// SocketName is the gateway socket's file name in the group's ipc dir.
	SocketName = "gateway.sock"
	// ContainerIPCDir is where the group's ipc dir is mounted, read-only.
	ContainerIPCDir = "/workspace/ipc"
	// ContainerSocket is the gateway socket as the container sees it.
	ContainerSocket = ContainerIPCDir + "/" + SocketName
	// BrowserSocketName is the browser's socket beside the gateway socket:
	// the egress proxy alone, to public addresses alone (BrowserProxyPort).
	BrowserSocketName = "browser.sock"
	// ContainerBrowserSocket is the browser socket as the container sees it.
	ContainerBrowserSocket = ContainerIPCDir + "/" + BrowserSocketName
	// ContainerGroupDir is the group's folder, read-write, the working directory.
	ContainerGroupDir = "/workspace/group"
	// ContainerGlobalDir is global memory: read-only except for main.
	ContainerGlobalDir = "/workspace/global"
	// ContainerExtraDir is where allowed extra mounts appear.
	ContainerExtraDir = "/workspace/extra"
	// ContainerHome is the agent user's home (a tmpfs).
	ContainerHome = "/home/agent"
	// ContainerClaudeDir is the group's Claude Code state, mounted read-write.
	ContainerClaudeDir = ContainerHome + "/.claude"
	// ContainerAgentBinary is where nanoclaw-agent is mounted, read-only.
	ContainerAgentBinary = "/usr/local/bin/nanoclaw-agent"
	// ContainerUID and ContainerGID are the image's own user (its USER
	// line). nanoclaw always passes --user: a root daemon runs each group as
	// its own id (see agent.FirstContainerID), an ordinary user's daemon as
	// that user.
	ContainerUID, ContainerGID = 1000, 1000

	// ProxyPort is the loopback port inside the container on which
	// nanoclaw-agent forwards bytes to the gateway socket. Claude Code's API
	// base URL and HTTP(S)_PROXY both point at it.
	ProxyPort = 3128
	// BrowserProxyPort is the browser's proxy inside the container: the
	// forwarder pipes it to the browser socket (BrowserSocketName), which
	// carries web traffic only, to public addresses only. Any page the
	// browser loads can make requests through its proxy, so that proxy
	// reaches less than the agent's own.
	BrowserProxyPort = 3129
	// PlaceholderAPIKey is the only credential a container ever holds
	// (finding 1): the gateway strips it and injects the real one.
	PlaceholderAPIKey = "nanoclaw-placeholder-key-no-credential-in-this-container"
)

// Gateway paths besides the API proxy (/v1/...) and the egress proxy
// (CONNECT and absolute-URI requests).
const (
	// GatewayHost is the Host of every /ipc request: nanoclaw-agent sends
	// them on the socket itself, never by a URL, and the gateway refuses
	// any other. A request that reaches the forwarder by a URL (a redirect
	// curl -L or git follows to http://127.0.0.1:3128/ipc/...) carries the
	// URL's host, and one by another name goes through the egress proxy.
	GatewayHost = "gateway"

	// PathNext (GET) long-polls for the agent's next input: 200 with an
	// Input, or 204 when nothing came within the poll time (ask again).
	PathNext = "/ipc/session/next"
	// PathOutput (POST) hands the host one Output as soon as it exists.
	PathOutput = "/ipc/session/output"
	// PathToolPrefix (POST PathToolPrefix+name) calls a host tool with a JSON
	// object of arguments; the answer is a ToolResponse.
	PathToolPrefix = "/ipc/tool/"
)

// InputKind says what an Input asks of the agent.
type InputKind string

// The kinds of input.
const (
	InputPrompt InputKind = "prompt" // a user turn for Claude Code
	InputClose  InputKind = "close"  // finish: close Claude Code's input and exit
)

// Input is one instruction from the host to the agent runner.
type Input struct {
	Kind InputKind `json:"kind"`
	// ID names a prompt; the Output answering it carries the same ID.
	ID string `json:"id,omitempty"`
	// Text is the prompt, for InputPrompt.
	Text string `json:"text,omitempty"`
}

// MaxPromptBytes bounds one prompt on the wire; the router's caps keep real
// prompts far smaller (finding 9).
const MaxPromptBytes = 4 << 20

// Validate checks an Input as the agent receives it.
func (in Input) Validate() error {
	switch {
	case in.Kind != InputPrompt && in.Kind != InputClose:
		return fmt.Errorf("unknown input kind %q", in.Kind)
	case in.Kind == InputPrompt && !validID(in.ID):
		return fmt.Errorf("prompt id %q: want 1-64 letters, digits, '-' or '_'", in.ID)
	case in.Kind == InputPrompt && (in.Text == "" || len(in.Text) > MaxPromptBytes || !utf8.ValidString(in.Text)):
		return fmt.Errorf("prompt %s: text must be non-empty UTF-8 of at most %d bytes", in.ID, MaxPromptBytes)
	}
	return nil
}

// Usage is what one turn cost, as Claude Code reported it.
type Usage struct {
	InputTokens  int64 `json:"input_tokens"`
	OutputTokens int64 `json:"output_tokens"`
}

// Output is the agent's answer to one prompt.
type Output struct {
	// InputID is the ID of the prompt this answers.
	InputID string `json:"input_id"`
	// Result is Claude Code's final text for the turn.
	Result string `json:"result"`
	// SessionID is Claude Code's session, to be resumed next time.
	SessionID string `json:"session_id,omitempty"`
	// IsError marks a failed turn; Error says why.
	IsError bool   `json:"is_error,omitempty"`
	Error   string `json:"error,omitempty"`
	// DurationMS is how long the turn took inside the container.
	DurationMS int64 `json:"duration_ms,omitempty"`
	Usage      Usage `json:"usage"`
}

// Caps of an Output's fields (R15): everything in an Output comes from the
// container and is held by the host, so every field is bounded. The ids
// are bounded by their grammar (64 and 128 bytes).
const (
	// MaxResultBytes bounds Output.Result: the host passes on no more of a
	// turn's text than this.
	MaxResultBytes = 1 << 20
	// MaxErrorBytes bounds Output.Error, a message for the log and the user.
	MaxErrorBytes = 64 << 10
	// MaxTurnTokens bounds each token count of one turn's Usage, far above
	// any model's context, so sums over turns cannot overflow.
	MaxTurnTokens = 1 << 40
	// MaxTurnDurationMS bounds Output.DurationMS: a week.
	MaxTurnDurationMS = 7 * 24 * 60 * 60 * 1000
)

// MaxOutputBytes bounds one Output body on the wire: JSON escaping may take
// six bytes for each byte of Result and Error, and the rest is small.
const MaxOutputBytes = 6*(MaxResultBytes+MaxErrorBytes) + 4<<10

// Validate checks an Output as the host receives it.
func (o Output) Validate() error {
	switch {
	case !validID(o.InputID):
		return fmt.Errorf("output: input id %q is not a prompt id", o.InputID)
	case o.SessionID != "" && !ValidSessionID(o.SessionID):
		return fmt.Errorf("output %s: session id %q has unexpected characters", o.InputID, o.SessionID)
	case len(o.Result) > MaxResultBytes || !utf8.ValidString(o.Result):
		return fmt.Errorf("output %s: result must be UTF-8 of at most %d bytes (got %d bytes)", o.InputID, MaxResultBytes, len(o.Result))
	case len(o.Error) > MaxErrorBytes || !utf8.ValidString(o.Error):
		return fmt.Errorf("output %s: error must be UTF-8 of at most %d bytes (got %d bytes)", o.InputID, MaxErrorBytes, len(o.Error))
	case o.Usage.InputTokens < 0 || o.Usage.OutputTokens < 0 || o.DurationMS < 0:
		return fmt.Errorf("output %s: negative usage or duration", o.InputID)
	case o.Usage.InputTokens > MaxTurnTokens || o.Usage.OutputTokens > MaxTurnTokens:
		return fmt.Errorf("output %s: usage of %d input and %d output tokens is over the limit of %d", o.InputID, o.Usage.InputTokens, o.Usage.OutputTokens, int64(MaxTurnTokens))
	case o.DurationMS > MaxTurnDurationMS:
		return fmt.Errorf("output %s: duration of %d ms is over the limit of %d", o.InputID, o.DurationMS, MaxTurnDurationMS)
	}
	return nil
}

// ToolResponse is the host's answer to a tool call: a result or an error
// message meant for the model (unknown task, not permitted, invalid value).
type ToolResponse struct {
	Result json.RawMessage `json:"result,omitempty"`
	Error  string          `json:"error,omitempty"`
}

// SendMessageArgs are the arguments of the send_message tool.
type SendMessageArgs struct {
	Text string `json:"text"`
}

// MaxMessageBytes bounds one message the agent sends to a chat.
const MaxMessageBytes = 64 << 10

// MaxToolBodyBytes bounds the JSON arguments of one tool call on the wire.
// The longest argument is a message (MaxMessageBytes; a task's prompt is
// shorter), which JSON escaping may make six times as long.
const MaxToolBodyBytes = 6*MaxMessageBytes + 16<<10

// Validate checks send_message's arguments.
func (a SendMessageArgs) Validate() error {
	switch {
	case strings.TrimSpace(a.Text) == "":
		return errors.New("text is empty")
	case len(a.Text) > MaxMessageBytes || !utf8.ValidString(a.Text):
		return fmt.Errorf("text must be UTF-8 of at most %d bytes", MaxMessageBytes)
	}
	return nil
}

// SendMessageResult is what send_message returns to the model.
type SendMessageResult struct {
	Delivered bool `json:"delivered"`
}

func validID(s string) bool { return len(s) <= 64 && idChars(s) }

// ValidSessionID reports whether s may be passed to Claude Code as --resume:
// its session ids are UUIDs, and nothing that could become a path or a flag
// is accepted.
func ValidSessionID(s string) bool { return len(s) <= 128 && idChars(s) && s[0] != '-' }

// idChars reports whether s is one or more ASCII letters, digits, '-' or '_'.
var idChars = regexp.MustCompile(`^[A-Za-z0-9_-]+$`).MatchString
