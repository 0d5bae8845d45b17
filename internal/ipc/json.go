package ipc

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
)

var unmarshaler = reflect.TypeFor[json.Unmarshaler]()

// DecodeStrict decodes b, which must hold exactly one JSON value, into v: an
// object for a struct or a map, a list for a slice. A field v does not have
// is refused, never silently dropped (finding 12), and so is anything after
// the value. Every JSON body that crosses a boundary is read this way.
func DecodeStrict(b []byte, v any) error {
	what, open := "value", byte(0)
	if t := reflect.TypeOf(v); t != nil && t.Kind() == reflect.Pointer && !t.Implements(unmarshaler) {
		switch t.Elem().Kind() {
		case reflect.Struct, reflect.Map:
			what, open = "object", '{'
		case reflect.Slice:
			what, open = "list", '['
		}
	}
	if t := bytes.TrimSpace(b); open != 0 && (len(t) == 0 || t[0] != open) {
		return fmt.Errorf("not a JSON %s", what)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var typ *json.UnmarshalTypeError
		if errors.As(err, &typ) {
			return fmt.Errorf("invalid JSON: field %q: want a JSON %s, got %s: %w", typ.Field, typ.Type, typ.Value, err)
		}
		return fmt.Errorf("invalid JSON: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return fmt.Errorf("trailing data after the JSON %s", what)
	}
	return nil
}

// WriteJSON answers a request on a socket with status and v as JSON (not
// cached, HTML characters as they are). A v that cannot be encoded is a 500
// saying so.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		status = http.StatusInternalServerError
		b.Reset()
		json.NewEncoder(&b).Encode(map[string]string{"error": "cannot encode the answer: " + err.Error()}) //nolint:errcheck // a string map always encodes
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write(bytes.TrimSuffix(b.Bytes(), []byte("\n"))) //nolint:errcheck // the client went away; nothing to do
}
