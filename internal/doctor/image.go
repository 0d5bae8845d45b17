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
	// ImageOtherVariant is an image built from this Dockerfile, but to
	// another stage: a plain agent image under the browser image's name, or
	// the reverse.
	ImageOtherVariant ImageState = "is stale (built as another variant)"
)

// ImageStatus tells whether ref is there and was built from this binary's
// Dockerfile to variant (agentimage.TargetAgent or TargetBrowser). The
// labels are the cheap proof: one `image inspect`, nothing run. The base is
// not compared: an owner may build from any Debian bookworm.
func ImageStatus(ctx context.Context, rt *sandbox.Runtime, ref, variant string) (ImageState, error) {
	labels, found, err := rt.ImageLabels(ctx, ref)
	if err != nil {
		return "", err
	}
	return imageState(labels, found, variant), nil
}

// imageState judges an image by its labels.
func imageState(labels map[string]string, found bool, variant string) ImageState {
	switch {
	case !found:
		return ImageMissing
	case labels[agentimage.LabelDockerfile] != agentimage.DockerfileDigest():
		return ImageStale
	case labels[agentimage.LabelVariant] != variant:
		return ImageOtherVariant
	}
	return ImageCurrent
}
