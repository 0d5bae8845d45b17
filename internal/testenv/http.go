package testenv

import (
	"context"
	"net"
	"net/http"
	"time"
)

// UnixClient is an HTTP client whose every request goes to the unix socket
// at path, whatever the URL's host. Each request has a connection of its
// own, so a test that counts connections sees its requests.
func UnixClient(path string) *http.Client {
	return &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		},
		DisableKeepAlives: true,
	}, Timeout: 20 * time.Second}
}
