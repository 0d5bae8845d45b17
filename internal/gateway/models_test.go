package gateway

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
)

func TestListModels(t *testing.T) {
	var auth []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		auth = append(auth, r.Header.Get("X-Api-Key"))
		if r.URL.Path != "/v1/models" {
			http.NotFound(w, r)
			return
		}
		switch r.URL.Query().Get("after_id") {
		case "":
			w.Write([]byte(`{"data":[{"id":"claude-opus-4-1","type":"model"},{"id":"claude-sonnet-4-5","type":"model"}],"has_more":true,"last_id":"claude-sonnet-4-5"}`))
		case "claude-sonnet-4-5":
			w.Write([]byte(`{"data":[{"id":"claude-haiku-4-5","type":"model"}],"has_more":false,"last_id":"claude-haiku-4-5"}`))
		}
	}))
	defer srv.Close()
	u, _ := url.Parse(srv.URL)
	ids, err := ListModels(context.Background(), u, "sk-real", "")
	if err != nil || !slices.Equal(ids, []string{"claude-opus-4-1", "claude-sonnet-4-5", "claude-haiku-4-5"}) {
		t.Fatalf("ListModels = %q, %v", ids, err)
	}
	if len(auth) != 2 || auth[0] != "sk-real" {
		t.Errorf("credential sent %q, want it on both pages", auth)
	}
}

func TestListModelsRefusalIsUnreachableWithoutTheKey(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, `{"error":{"message":"bad key sk-real"}}`, http.StatusUnauthorized)
	}))
	defer srv.Close()
	u, _ := url.Parse(srv.URL)
	_, err := ListModels(context.Background(), u, "sk-real", "")
	if !errors.Is(err, ErrModelsUnreachable) || strings.Contains(err.Error(), "sk-real") || !strings.Contains(err.Error(), "401") {
		t.Errorf("error %v: want ErrModelsUnreachable with the status, without the key", err)
	}
	redirect := httptest.NewServer(http.RedirectHandler("http://127.0.0.1:1/v1/models", http.StatusFound))
	defer redirect.Close()
	u, _ = url.Parse(redirect.URL)
	if _, err := ListModels(context.Background(), u, "sk-real", ""); !errors.Is(err, ErrModelsUnreachable) || !strings.Contains(err.Error(), "302") {
		t.Errorf("a redirect: %v, want it refused, not followed", err)
	}
}
