package tools

import (
	"context"
	"errors"
	"fmt"

	"github.com/nanoclaw/nanoclaw/internal/ipc"
	"github.com/nanoclaw/nanoclaw/internal/sanitize"
	"github.com/nanoclaw/nanoclaw/internal/store"
)

// Files takes the host's copy of a file an agent sends (agent.Runner in
// production).
type Files interface {
	// SpoolFile copies the file at path (the agent's, under
	// /workspace/group) of the group's folder into the host's spool, if
	// it is a regular file of at most max bytes, and says what it is.
	SpoolFile(ctx context.Context, folder, path string, max int64) (store.OutFile, error)
	// DropSpool removes a copy SpoolFile took that no message will send.
	DropSpool(name string)
}

// sendFile sends a file of the group's folder to the chat the group's
// current work came from, as send_message sends text: the same chat, the
// same send limit (R9), the same outbox.
func (s *Set) sendFile(ctx context.Context, folder string, a *ipc.SendFileArgs) (ipc.SendFileResult, error) {
	chat, err := s.chatOf(ctx, folder)
	if err != nil {
		return ipc.SendFileResult{}, err
	}
	path := sanitize.Clip(a.Path, 200, "…")
	// R9: refused before anything is copied or kept, as send_message is.
	if err := s.opt.Chats.CheckSend(chat); err != nil {
		s.log.Warn("send_file refused: the chat's send limit is reached", "group", folder, "chat", chat, "path", path)
		return ipc.SendFileResult{}, fmt.Errorf("send_file: not sent: %w", err)
	}
	if s.opt.Files == nil {
		return ipc.SendFileResult{}, errors.New("send_file: this host cannot send files")
	}
	f, err := s.opt.Files.SpoolFile(ctx, folder, a.Path, s.opt.MediaMaxBytes)
	if err != nil {
		s.log.Warn("send_file refused", "group", folder, "chat", chat, "path", path, "err", err)
		return ipc.SendFileResult{}, err
	}
	f.Caption = a.Caption
	// The line the chat's history keeps of it: the caption, or the file's
	// name, said by the assistant as its messages are.
	line := a.Caption
	if line == "" {
		line = "[file " + f.Name + "]"
	}
	o := store.NewOutgoing(chat, folder, s.opt.AssistantName+": "+line)
	o.File = &f
	// From here the copy is the host's to keep or remove: an agent that
	// hangs up changes neither (it would leave copies no message names).
	ctx = context.WithoutCancel(ctx)
	if err := s.st.Enqueue(ctx, o); err != nil {
		s.opt.Files.DropSpool(f.Spool)
		return ipc.SendFileResult{}, err
	}
	s.log.Info("send_file", "group", folder, "chat", chat, "file", f.Name, "kind", f.Kind, "mime", f.MIME, "spool", f.Spool)
	ctx, cancel := context.WithTimeout(ctx, deliverTimeout)
	defer cancel()
	return ipc.SendFileResult{Delivered: s.opt.Chats.Deliver(ctx, o)}, nil
}
