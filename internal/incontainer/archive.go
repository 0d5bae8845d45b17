package incontainer

// The transcript archive: before Claude Code compacts a session (its
// summary replaces the conversation it had), its PreCompact hook runs
// `nanoclaw-agent hook precompact`, which renders the session's transcript
// as Markdown into the group folder's conversations/ directory, where the
// agent (and the user, through it) can read it later.

import (
	"bufio"
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/nanoclaw/nanoclaw/internal/ipc"
	"github.com/nanoclaw/nanoclaw/internal/sanitize"
)

// HookCommand is the PreCompact hook's command. Claude Code runs a hook's
// command through a shell, so it is a fixed constant: no variable data is
// ever put into it. The program is looked up in Claude Code's PATH, which
// holds only the image's read-only directories (DefaultPath; the agent
// binary is mounted at ipc.ContainerAgentBinary, in /usr/local/bin), so a
// host test can point it at a test build through --path.
const HookCommand = "nanoclaw-agent hook precompact"

// EnvGroupDir tells the hook where the group folder is (the run's WorkDir;
// ipc.ContainerGroupDir in the container). The hook writes only below it.
const EnvGroupDir = "NANOCLAW_GROUP_DIR"

// ArchiveDirName is the group folder's subdirectory for archives.
const ArchiveDirName = "conversations"

// Limits of the hook's inputs.
const (
	// MaxHookPayloadBytes caps the JSON Claude Code writes to the hook's
	// stdin.
	MaxHookPayloadBytes = 64 << 10
	// MaxTranscriptBytes caps how much of a transcript is read; the rest is
	// left out, and the archive says so.
	MaxTranscriptBytes = 64 << 20
	// maxTranscriptLine skips single transcript lines above it (Claude Code
	// records whole API request bodies; no conversation turn is that long).
	maxTranscriptLine = 8 << 20
	// maxBlockBytes cuts one text block in the archive.
	maxBlockBytes = 256 << 10
)

// HookSettings is the JSON passed to Claude Code's --settings: it adds the
// PreCompact hook for this run only, without writing anything into the
// image or the group's state. HookCommand needs no JSON escaping.
const HookSettings = `{"hooks":{"PreCompact":[{"hooks":[{"type":"command","command":"` + HookCommand + `","timeout":60}]}]}}`

// HookPayload is what Claude Code writes to a PreCompact hook's stdin (the
// fields nanoclaw uses; Claude Code 2.1.332 also sends permission_mode and
// others, which are ignored).
type HookPayload struct {
	SessionID      string `json:"session_id"`
	TranscriptPath string `json:"transcript_path"`
	Cwd            string `json:"cwd"`
	HookEventName  string `json:"hook_event_name"`
	Trigger        string `json:"trigger"`
}

// ParseHookPayload decodes and validates a PreCompact payload.
func ParseHookPayload(b []byte) (HookPayload, error) {
	var p HookPayload
	if len(b) > MaxHookPayloadBytes {
		return p, fmt.Errorf("hook payload of %d bytes: over the %d-byte limit", len(b), MaxHookPayloadBytes)
	}
	if err := json.Unmarshal(b, &p); err != nil {
		return p, fmt.Errorf("hook payload: %w", err)
	}
	if p.HookEventName != "PreCompact" {
		return p, fmt.Errorf("hook payload: hook_event_name %q, want PreCompact", sanitize.Clip(p.HookEventName, 64, "…"))
	}
	if p.Trigger != "manual" && p.Trigger != "auto" {
		return p, fmt.Errorf("hook payload: trigger %q, want manual or auto", sanitize.Clip(p.Trigger, 64, "…"))
	}
	if !ipc.ValidSessionID(p.SessionID) {
		return p, fmt.Errorf("hook payload: session_id %q is not a session id", sanitize.Clip(p.SessionID, 64, "…"))
	}
	if !filepath.IsAbs(p.TranscriptPath) || !strings.HasSuffix(p.TranscriptPath, ".jsonl") {
		return p, fmt.Errorf("hook payload: transcript_path %q: want an absolute path to a .jsonl file", sanitize.Clip(p.TranscriptPath, 256, "…"))
	}
	return p, nil
}

// ReadTranscript reads the transcript at path, which must lie inside
// claudeDir once symlinks are resolved: the hook reads nothing else, so a
// payload cannot make it copy another file into the group folder. It reads
// at most MaxTranscriptBytes and reports whether it stopped there.
func ReadTranscript(path, claudeDir string) (entries []TranscriptEntry, cut bool, err error) {
	root, err := filepath.EvalSymlinks(claudeDir)
	if err != nil {
		return nil, false, fmt.Errorf("claude dir %s: %w", claudeDir, err)
	}
	real, err := filepath.EvalSymlinks(path)
	if err != nil {
		return nil, false, fmt.Errorf("transcript %s: %w", path, err)
	}
	if rel, err := filepath.Rel(root, real); err != nil || rel == "." || rel == ".." || strings.HasPrefix(rel, "../") || filepath.IsAbs(rel) {
		return nil, false, fmt.Errorf("transcript %s (%s): not inside the claude dir %s; refused", path, real, root)
	}
	f, err := os.Open(real)
	if err != nil {
		return nil, false, fmt.Errorf("transcript: %w", err)
	}
	defer f.Close()
	if st, err := f.Stat(); err != nil || !st.Mode().IsRegular() {
		return nil, false, fmt.Errorf("transcript %s: not a regular file", real)
	}
	lr := &io.LimitedReader{R: f, N: MaxTranscriptBytes}
	lines := bufio.NewReaderSize(lr, 64<<10)
	for {
		line, err := readLine(lines, maxTranscriptLine)
		switch {
		case errors.Is(err, io.EOF):
			return entries, lr.N == 0, nil
		case errors.Is(err, errLineTooLong):
		case err != nil:
			return entries, false, fmt.Errorf("transcript %s: %w", real, err)
		default:
			var e TranscriptEntry
			if len(bytes.TrimSpace(line)) > 0 && json.Unmarshal(line, &e) == nil {
				entries = append(entries, e)
			}
		}
	}
}

// TranscriptEntry is one line of a Claude Code transcript (the fields the
// archive uses). Lines of other types (attachments, queue operations, API
// request records, system lines) are skipped.
type TranscriptEntry struct {
	Type             string            `json:"type"`
	Subtype          string            `json:"subtype"`
	IsSidechain      bool              `json:"isSidechain"`
	IsMeta           bool              `json:"isMeta"`
	IsCompactSummary bool              `json:"isCompactSummary"`
	Timestamp        string            `json:"timestamp"`
	Message          transcriptMessage `json:"message"`
}

type transcriptMessage struct {
	Role    string          `json:"role"`
	Content json.RawMessage `json:"content"`
}

type transcriptBlock struct {
	Type  string          `json:"type"`
	Text  string          `json:"text"`
	Name  string          `json:"name"`
	Input json.RawMessage `json:"input"`
}

// turnText is the archive's text of one user or assistant entry, "" for
// nothing worth keeping.
func turnText(e TranscriptEntry) string {
	if e.IsSidechain || e.IsMeta || e.IsCompactSummary {
		return ""
	}
	var s string
	if json.Unmarshal(e.Message.Content, &s) == nil {
		return cleanText(s)
	}
	var blocks []transcriptBlock
	if json.Unmarshal(e.Message.Content, &blocks) != nil {
		return ""
	}
	var parts []string
	for _, b := range blocks {
		switch b.Type {
		case "text":
			if t := cleanText(b.Text); t != "" {
				parts = append(parts, t)
			}
		case "tool_use":
			parts = append(parts, "_Tool: "+toolLine(b)+"_")
		}
		// thinking, tool_result, images: left out.
	}
	return strings.Join(parts, "\n\n")
}

// cleanText drops Claude Code's own markup: slash-command records and
// system reminders are not what anyone said.
func cleanText(s string) string {
	s = strings.TrimSpace(strings.ToValidUTF8(s, "\uFFFD"))
	for _, p := range []string{"<command-name>", "<command-message>", "<local-command-stdout>", "<local-command-stderr>", "<system-reminder>", "<local-command-caveat>"} {
		if strings.HasPrefix(s, p) {
			return ""
		}
	}
	return sanitize.Clip(s, maxBlockBytes, "…")
}

// toolLine summarises a tool call in one line: its name and a short,
// single-line form of its input.
func toolLine(b transcriptBlock) string {
	name := cmp.Or(oneLine(b.Name, 80), "tool")
	in := oneLine(string(b.Input), 160)
	if in == "" || in == "{}" || in == "null" {
		return name
	}
	return name + " " + in
}

func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	// The line is set in Markdown emphasis: keep its markers out.
	s = strings.NewReplacer("_", "\\_", "*", "\\*", "`", "'").Replace(s)
	return sanitize.Clip(s, n, "…")
}

// sinceLastCompaction is the part of a transcript after its last
// compaction: Claude Code keeps appending to the same file, and what came
// before that boundary was archived by the previous compaction.
func sinceLastCompaction(entries []TranscriptEntry) []TranscriptEntry {
	for i := len(entries) - 1; i >= 0; i-- {
		if entries[i].Type == "system" && entries[i].Subtype == "compact_boundary" {
			return entries[i+1:]
		}
	}
	return entries
}

// RenderMarkdown renders a transcript as the archive's Markdown: the user
// and assistant turns since the last compaction, tool calls in one line
// each, without Claude Code's own records (attachments, slash commands,
// system reminders, compaction summaries, thinking, tool results).
func RenderMarkdown(p HookPayload, entries []TranscriptEntry, cut bool, now time.Time) string {
	entries = sinceLastCompaction(entries)
	var b strings.Builder
	fmt.Fprintf(&b, "# Conversation archived %s\n\n", now.Format("2006-01-02 15:04 MST"))
	fmt.Fprintf(&b, "- Session: %s\n- Trigger: %s compaction\n", p.SessionID, p.Trigger)
	turns := 0
	var body strings.Builder
	for _, e := range entries {
		who := map[string]string{"user": "User", "assistant": "Assistant"}[e.Type]
		t := turnText(e)
		if who == "" || e.Message.Role != e.Type || t == "" {
			continue
		}
		turns++
		fmt.Fprintf(&body, "\n**%s**:\n\n%s\n", who, t)
	}
	fmt.Fprintf(&b, "- Turns: %d\n", turns)
	if cut {
		fmt.Fprintf(&b, "- Note: the transcript was cut at %d bytes\n", MaxTranscriptBytes)
	}
	b.WriteString(body.String())
	return b.String()
}

// FirstUserText is the first user turn's text ("" if none): the slug's
// source.
func FirstUserText(entries []TranscriptEntry) string {
	for _, e := range sinceLastCompaction(entries) {
		if e.Type == "user" && e.Message.Role == "user" {
			if t := turnText(e); t != "" && !strings.HasPrefix(t, "_Tool: ") {
				return t
			}
		}
	}
	return ""
}

// Slug makes a file name part of s: lowercase a-z, 0-9 and '-', at most 40
// characters, "conversation" when nothing is left.
func Slug(s string) string {
	words := strings.FieldsFunc(strings.ToLower(s), func(r rune) bool { return !('a' <= r && r <= 'z' || '0' <= r && r <= '9') })
	out := strings.Join(words, "-")
	if len(out) > 40 {
		out = strings.TrimRight(out[:40], "-")
	}
	return cmp.Or(out, "conversation")
}

// WriteArchive writes text to dir/<date>-<slug>.md, never over an existing
// file (then -2, -3, …), creating dir (0755) if needed. It returns the
// path written.
func WriteArchive(dir, date, slug, text string) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("archive dir: %w", err)
	}
	base := date + "-" + slug
	for i := 1; i <= 1000; i++ {
		name := base + ".md"
		if i > 1 {
			name = fmt.Sprintf("%s-%d.md", base, i)
		}
		path := filepath.Join(dir, name)
		// O_EXCL: never overwrite, and never follow a symlink the agent
		// left at that name.
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if errors.Is(err, os.ErrExist) {
			continue
		}
		if err != nil {
			return "", fmt.Errorf("archive: %w", err)
		}
		_, err = f.WriteString(text)
		if err := cmp.Or(err, f.Close()); err != nil {
			return "", fmt.Errorf("archive %s: %w", path, err)
		}
		return path, nil
	}
	return "", fmt.Errorf("archive: %s/%s-*.md: too many archives of that name", dir, base)
}

// Archive is the PreCompact hook: it reads the transcript the payload
// names (inside claudeDir only) and writes its Markdown into
// groupDir/conversations. It returns the path written.
func Archive(p HookPayload, claudeDir, groupDir string, now time.Time) (string, error) {
	if !filepath.IsAbs(groupDir) || !filepath.IsAbs(claudeDir) {
		return "", fmt.Errorf("group dir %q and claude dir %q must be absolute paths", groupDir, claudeDir)
	}
	entries, cut, err := ReadTranscript(p.TranscriptPath, claudeDir)
	if err != nil {
		return "", err
	}
	dir := filepath.Join(groupDir, ArchiveDirName)
	// The agent owns the group folder: conversations must be a real
	// directory, not a symlink leading the write elsewhere.
	if st, err := os.Lstat(dir); err == nil && !st.IsDir() {
		return "", fmt.Errorf("archive dir %s: exists and is not a directory", dir)
	}
	return WriteArchive(dir, now.Format("2006-01-02"), Slug(FirstUserText(entries)), RenderMarkdown(p, entries, cut, now))
}
