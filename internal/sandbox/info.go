package sandbox

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
)

// ImageLabels returns the labels of a local image; a missing image is
// (nil, false, nil).
func (r *Runtime) ImageLabels(ctx context.Context, ref string) (map[string]string, bool, error) {
	if err := ValidateImage(ref); err != nil {
		return nil, false, err
	}
	out, err := r.run(ctx, "image", "inspect", "--format", "{{json .Config.Labels}}", ref)
	if err != nil {
		if r.imageMissing(err) || (r.Kind == Podman && strings.Contains(err.Error(), "image not known")) {
			return nil, false, nil
		}
		return nil, false, fmt.Errorf("inspect image %s: %w", ref, err)
	}
	var labels map[string]string
	if s := strings.TrimSpace(string(out)); s != "null" {
		if err := json.Unmarshal([]byte(s), &labels); err != nil {
			return nil, true, fmt.Errorf("inspect image %s: labels: %w", ref, err)
		}
	}
	return labels, true, nil
}

// Info is the runtime's own report of one setting: `podman info` or
// `docker info` with a Go template, e.g. "{{.Host.CgroupManager}}".
func (r *Runtime) Info(ctx context.Context, format string) (string, error) {
	if r.Kind == Apple {
		return "", fmt.Errorf("%s has no info command", r.Kind)
	}
	out, err := r.run(ctx, "info", "--format", format)
	return strings.TrimSpace(string(out)), err
}
