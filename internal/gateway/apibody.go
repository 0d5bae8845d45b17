package gateway

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/nanoclaw/nanoclaw/internal/egress"
	"github.com/nanoclaw/nanoclaw/internal/sanitize"
)

// The Messages API can itself reach out on a request's behalf: MCP
// connectors (mcp_servers) and server tools (web fetch, web search, code
// execution) make Anthropic's servers connect elsewhere, url sources make
// them fetch, and file sources (and a code-execution container) read
// Files-API objects shared by everyone who uses the key. So the gateway
// reads each /v1/messages body before it goes upstream (R5):
//
//   - mcp_servers, container, file sources and container uploads are
//     refused for every group: nanoclaw's agents use none of them, and
//     the Files API belongs to the key, not to a group;
//   - web search and web fetch server tools, and url sources, are
//     egress: allowed only to a group whose egress mode is public, like
//     its own connections to the web;
//   - any other server tool type is refused, so a new one is closed until
//     it is looked at.

// messagesBody is what the check reads of a request; the rest (text,
// tool inputs, schemas) is skipped, not decoded.
type messagesBody struct {
	MCPServers json.RawMessage `json:"mcp_servers"`
	Container  json.RawMessage `json:"container"`
	Tools      []struct {
		Type string `json:"type"`
		Name string `json:"name"`
	} `json:"tools"`
	System   json.RawMessage `json:"system"`
	Messages []struct {
		Content json.RawMessage `json:"content"`
	} `json:"messages"`
}

// callEstimate is what the budgets read of a checked Messages body: the
// model it asks for and the most output it may be billed (max_tokens; 0
// when absent, which the API refuses anyway).
func callEstimate(body []byte) (model string, maxTokens int64) {
	var b struct {
		Model     string `json:"model"`
		MaxTokens int64  `json:"max_tokens"`
	}
	json.Unmarshal(body, &b) //nolint:errcheck // checkMessagesBody decoded it already; a field of the wrong type reads as zero
	return b.Model, max(b.MaxTokens, 0)
}

// contentBlock is what the check reads of a content block.
type contentBlock struct {
	Type   string `json:"type"`
	Source *struct {
		Type    string          `json:"type"`
		Content json.RawMessage `json:"content"` // a document made of blocks
	} `json:"source"`
	Content json.RawMessage `json:"content"` // a tool result's blocks
}

// clientToolTypes are tool types the client (Claude Code) runs itself;
// they reach nothing through the API.
var clientToolTypes = []string{"custom", "bash_", "text_editor_", "computer_", "memory_", "tool_search_tool_"}

// webServerTools reach the web from Anthropic's servers.
var webServerTools = []string{"web_search_", "web_fetch_"}

// maxBlockDepth bounds how deep content nests (a tool result holding a
// document holding blocks): the API nests two levels.
const maxBlockDepth = 4

// checkMessagesBody reports why a /v1/messages (or count_tokens) body may
// not go upstream for a group with egress mode mode, or nil.
func checkMessagesBody(body []byte, mode egress.Mode) error {
	if t := bytes.TrimSpace(body); len(t) == 0 || t[0] != '{' {
		return errors.New("the body is not a JSON object")
	}
	if err := checkKeys(body); err != nil {
		return err
	}
	var b messagesBody
	if err := json.Unmarshal(body, &b); err != nil {
		return fmt.Errorf("the body is not a Messages API request: %v", err)
	}
	mode = cmp.Or(mode, egress.DefaultMode)
	web := mode == egress.Public
	if present(b.MCPServers) {
		return errors.New("MCP connectors (mcp_servers) would let the API connect elsewhere for this group")
	}
	if present(b.Container) {
		return errors.New("a code-execution container would reach the Files API of the key")
	}
	for _, t := range b.Tools {
		switch {
		case t.Type == "" || hasPrefix(t.Type, clientToolTypes):
		case hasPrefix(t.Type, webServerTools):
			if !web {
				return fmt.Errorf("the server tool %q reaches the web, which this group's egress mode %q does not allow", sanitize.Clip(t.Type, 64, "…"), mode)
			}
		default:
			return fmt.Errorf("the server tool %q (%q) is not one nanoclaw forwards", sanitize.Clip(t.Type, 64, "…"), sanitize.Clip(t.Name, 64, "…"))
		}
	}
	if err := checkBlocks(b.System, web, 0); err != nil {
		return err
	}
	for _, m := range b.Messages {
		if err := checkBlocks(m.Content, web, 0); err != nil {
			return err
		}
	}
	return nil
}

// checkBlocks checks content: a string, or an array of blocks.
func checkBlocks(raw json.RawMessage, web bool, depth int) error {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || raw[0] != '[' {
		return nil // a string, or nothing
	}
	if depth > maxBlockDepth {
		return errors.New("content nests too deeply")
	}
	var blocks []contentBlock
	if err := json.Unmarshal(raw, &blocks); err != nil {
		return fmt.Errorf("content: %v", err)
	}
	for _, bl := range blocks {
		switch bl.Type {
		case "container_upload":
			return errors.New("a container upload reads the Files API of the key")
		case "mcp_tool_use", "mcp_tool_result":
			return errors.New("MCP connector blocks are not forwarded")
		}
		if s := bl.Source; s != nil {
			switch s.Type {
			case "file":
				return fmt.Errorf("a %s from the Files API (file source) belongs to the key, not to this group", sanitize.Clip(bl.Type, 64, "…"))
			case "url":
				if !web {
					return fmt.Errorf("a %s from a URL makes the API fetch it, which this group's egress mode does not allow", sanitize.Clip(bl.Type, 64, "…"))
				}
			}
			if err := checkBlocks(s.Content, web, depth+1); err != nil {
				return err
			}
		}
		if err := checkBlocks(bl.Content, web, depth+1); err != nil {
			return err
		}
	}
	return nil
}

// checkedKeys are the keys the check reads. encoding/json matches keys
// without regard to case (Unicode folding included) and lets the last of
// two equal keys win, while another server may take the exact or the
// first one: so a key that only folds to one of these, and any key twice
// in one object, is refused — the check and the upstream then read the
// same thing.
var checkedKeys = []string{"mcp_servers", "container", "tools", "type", "name", "system", "messages", "content", "source", "model", "max_tokens"}

// freeKeys hold data the API does not act on (a tool's input, its input
// schema, metadata): keys there may be in any case.
var freeKeys = map[string]bool{"input": true, "input_schema": true, "metadata": true}

// checkKeys walks every object of body and refuses duplicate keys and keys
// that differ from a checked one only in case.
func checkKeys(body []byte) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	type frame struct {
		object bool
		keys   map[string]bool
		key    bool   // the next string token in this object is a key
		last   string // the key whose value comes next
		free   bool   // a subtree of data (tool input, schema): any key's case goes
	}
	var stack []*frame
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("the body is not a Messages API request: %v", err)
		}
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		switch t := tok.(type) {
		case json.Delim:
			switch t {
			case '{', '[':
				if len(stack) >= maxJSONDepth {
					return errors.New("the body nests too deeply")
				}
				if top != nil && top.object {
					top.key = true // the value is done: a key comes next
				}
				free := top != nil && (top.free || top.object && freeKeys[top.last])
				stack = append(stack, &frame{object: t == '{', keys: map[string]bool{}, key: t == '{', free: free})
			default:
				stack = stack[:len(stack)-1]
			}
			continue
		case string:
			if top != nil && top.object && top.key {
				if top.keys[t] {
					return fmt.Errorf("the key %q appears twice in one object", sanitize.Clip(t, 64, "…"))
				}
				top.keys[t] = true
				for _, k := range checkedKeys {
					if !top.free && t != k && strings.EqualFold(t, k) {
						return fmt.Errorf("the key %q is %q in another case", sanitize.Clip(t, 64, "…"), k)
					}
				}
				top.key, top.last = false, t
				continue
			}
		}
		if top != nil && top.object {
			top.key = true // a scalar value: a key comes next
		}
	}
}

// maxJSONDepth bounds how deeply a request body nests.
const maxJSONDepth = 64

func present(raw json.RawMessage) bool {
	t := bytes.TrimSpace(raw)
	return len(t) > 0 && !bytes.Equal(t, []byte("null"))
}

func hasPrefix(s string, prefixes []string) bool {
	return slices.ContainsFunc(prefixes, func(p string) bool { return strings.HasPrefix(s, p) })
}
