package whatsapp

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"slices"
	"time"

	"go.mau.fi/whatsmeow/types"

	"github.com/nanoclaw/nanoclaw/internal/channel"
)

// identity is the account as whatsmeow's device store knows it now. It is
// read afresh because whatsmeow learns the LID at the first login, before it
// reports Connected and possibly after offline messages began to arrive.
func (c *Channel) identity() identity {
	return identity{
		pn:       c.cli.Store.GetJID().ToNonAD(),
		lid:      c.cli.Store.GetLID().ToNonAD(),
		pushName: c.cli.Store.PushName,
		pnForLID: c.lookupPN,
	}
}

// lookupPN finds another user's phone number from whatsmeow's LID map.
func (c *Channel) lookupPN(lid types.JID) types.JID {
	ctx, cancel := context.WithTimeout(c.life, 5*time.Second)
	defer cancel()
	pn, err := c.cli.Store.LIDs.GetPNForLID(ctx, lid)
	if err != nil {
		c.log.Debug("LID lookup failed", "lid", lid.String(), "err", err)
		return types.EmptyJID
	}
	return pn
}

// syncGroups reports the joined groups' names to the handler at each
// (re)connect (at most hourly) and every sync interval, until Close.
func (c *Channel) syncGroups() {
	ticker := time.NewTicker(groupSyncInterval)
	defer ticker.Stop()
	var last time.Time
	for {
		select {
		case <-c.life.Done():
			return
		case <-c.resync:
			if !last.IsZero() && time.Since(last) < minGroupResync {
				continue
			}
		case <-ticker.C:
		}
		groups, err := c.groups(c.life)
		if err != nil {
			c.log.Warn("could not read WhatsApp group names", "err", err)
			continue
		}
		last = time.Now()
		for _, g := range groups {
			c.onChat(g)
		}
		c.log.Debug("synced WhatsApp group names", "groups", len(groups))
	}
}

// groups lists the joined groups.
func (c *Channel) groups(ctx context.Context) ([]channel.ChatInfo, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	joined, err := c.cli.GetJoinedGroups(ctx)
	if err != nil {
		return nil, fmt.Errorf("list WhatsApp groups: %w", err)
	}
	out := make([]channel.ChatInfo, 0, len(joined))
	for _, g := range joined {
		out = append(out, channel.ChatInfo{JID: g.JID.String(), Name: validText(g.Name), IsGroup: true})
	}
	return out, nil
}

// Chats lists the joined groups with their names, the self-chat, and the
// contacts whatsmeow knows (from the address book sync and push names), all
// read from its local store except the group list.
func (c *Channel) Chats(ctx context.Context) ([]channel.ChatInfo, error) {
	if err := c.usable(); err != nil {
		return nil, fmt.Errorf("whatsapp chats: %w", err)
	}
	groups, err := c.groups(ctx)
	if err != nil {
		return nil, err
	}
	id := c.identity()
	byJID := map[string]channel.ChatInfo{}
	contacts, err := c.cli.Store.Contacts.GetAllContacts(ctx)
	if err != nil {
		c.log.Warn("could not read WhatsApp contacts", "err", err)
	}
	for jid, info := range contacts {
		canon := id.canonical(jid, types.EmptyJID)
		if canon.Server != types.DefaultUserServer {
			continue // a LID without a known phone number: no chat to name
		}
		name := cmp.Or(info.FullName, info.FirstName, info.PushName, info.BusinessName)
		if prev, ok := byJID[canon.String()]; ok && prev.Name != "" {
			continue
		}
		byJID[canon.String()] = channel.ChatInfo{JID: canon.String(), Name: validText(name)}
	}
	if !id.pn.IsEmpty() {
		byJID[id.pn.String()] = channel.ChatInfo{JID: id.pn.String(), Name: validText(id.pushName)}
	}
	for _, k := range slices.Sorted(maps.Keys(byJID)) {
		groups = append(groups, byJID[k])
	}
	return groups, nil
}
