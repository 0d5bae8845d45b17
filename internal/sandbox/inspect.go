package sandbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Inspection is the runtime's own record of a container: what it was told
// to enforce, read back from it rather than from what runs inside.
type Inspection struct {
	NetworkMode     string
	AllCapsDropped  bool // no capability at all: none added, none kept, not privileged
	ReadOnlyRoot    bool
	NoNewPrivileges bool
	User            string
	Command         []string // the entrypoint and its arguments
	Mounts          []Mount  // the bind mounts
}

// inspected is the part of `docker inspect` and `podman inspect` that
// Inspect reads; the two share these names.
type inspected struct {
	HostConfig struct {
		NetworkMode    string
		CapAdd         []string
		CapDrop        []string
		Privileged     bool
		ReadonlyRootfs bool
		SecurityOpt    []string
	}
	Config struct {
		User       string
		Entrypoint json.RawMessage // podman 4: a string; docker and podman 5: a list
		Cmd        []string
	}
	Mounts []struct {
		Type        string
		Source      string
		Destination string
		RW          bool
	}
	// podman alone: the capability sets the container's process got
	// (null when empty; absent from a podman too old to say).
	EffectiveCaps, BoundingCaps json.RawMessage
}

// maxInspectBytes bounds what Inspect reads of the CLI's answer.
const maxInspectBytes = 4 << 20

// Inspect returns the runtime's record of the container name (running or
// exited; see Keep). Apple's CLI reports none of these settings in a form
// nanoclaw reads: there it fails with errors.ErrUnsupported.
func (r *Runtime) Inspect(ctx context.Context, name string) (Inspection, error) {
	if err := validateName(name); err != nil {
		return Inspection{}, err
	}
	if r.Kind == Apple {
		return Inspection{}, fmt.Errorf("inspect %s: %s: %w", name, r.Kind, errors.ErrUnsupported)
	}
	out, err := r.run(ctx, "inspect", "--type", "container", name)
	if err != nil {
		return Inspection{}, fmt.Errorf("inspect container %s: %w", name, err)
	}
	if len(out) > maxInspectBytes {
		return Inspection{}, fmt.Errorf("inspect container %s: %d bytes of answer, over %d", name, len(out), maxInspectBytes)
	}
	var all []inspected
	if err := json.Unmarshal(out, &all); err != nil || len(all) != 1 {
		return Inspection{}, fmt.Errorf("inspect container %s: not one container's record (%v)", name, err)
	}
	return all[0].inspection(r.Kind)
}

func (c inspected) inspection(kind Kind) (Inspection, error) {
	h := c.HostConfig
	in := Inspection{
		NetworkMode:     h.NetworkMode,
		ReadOnlyRoot:    h.ReadonlyRootfs,
		NoNewPrivileges: slices.ContainsFunc(h.SecurityOpt, func(o string) bool { return o == "no-new-privileges" || o == "no-new-privileges:true" }),
		User:            c.Config.User,
	}
	// docker records the request (--cap-drop ALL); podman expands it into
	// the list of defaults it dropped, and records the sets the process
	// got, which are what counts.
	dropped := slices.ContainsFunc(h.CapDrop, func(c string) bool { return strings.EqualFold(c, "ALL") })
	if kind == Podman {
		dropped = noCaps(c.EffectiveCaps) && noCaps(c.BoundingCaps)
	}
	in.AllCapsDropped = dropped && len(h.CapAdd) == 0 && !h.Privileged
	var entry []string
	if len(c.Config.Entrypoint) > 0 && string(c.Config.Entrypoint) != "null" {
		var one string
		if err := json.Unmarshal(c.Config.Entrypoint, &one); err == nil {
			if one != "" {
				entry = []string{one}
			}
		} else if err := json.Unmarshal(c.Config.Entrypoint, &entry); err != nil {
			return Inspection{}, fmt.Errorf("inspect: entrypoint %.80s: %w", c.Config.Entrypoint, err)
		}
	}
	in.Command = append(entry, c.Config.Cmd...)
	for _, m := range c.Mounts {
		if m.Type == "bind" {
			in.Mounts = append(in.Mounts, Mount{Source: m.Source, Target: m.Destination, ReadOnly: !m.RW})
		}
	}
	return in, nil
}

// noCaps reports whether podman recorded a capability set, and an empty one.
func noCaps(raw json.RawMessage) bool {
	var caps []string
	return len(raw) > 0 && json.Unmarshal(raw, &caps) == nil && len(caps) == 0
}
