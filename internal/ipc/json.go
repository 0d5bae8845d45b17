package ipc

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
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
