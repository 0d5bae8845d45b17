package doctor

import (
	"context"

	"github.com/nanoclaw/nanoclaw/agentimage"
	"github.com/nanoclaw/nanoclaw/internal/sandbox"
)

// ImageState is what an image is to this nanoclaw.
type ImageState string

const (
	ImageCurrent ImageState = "is current"
	ImageMissing ImageState = "is missing"
	ImageStale   ImageState = "is stale (built from another Dockerfile)"
)

// ImageStatus tells whether ref is there and was built from this binary's
// Dockerfile. The label is the cheap proof: one `image inspect`, nothing run.
// The base is not compared: an owner may build from any Debian bookworm.
func ImageStatus(ctx context.Context, rt *sandbox.Runtime, ref string) (ImageState, error) {
	labels, found, err := rt.ImageLabels(ctx, ref)
	switch {
	case err != nil:
		return "", err
	case !found:
		return ImageMissing, nil
	case labels[agentimage.LabelDockerfile] != agentimage.DockerfileDigest():
		return ImageStale, nil
	}
	return ImageCurrent, nil
}
