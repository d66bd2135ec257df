package store

import (
	"reflect"
	"strings"
	"testing"
)

// TestDecodeHeaders: the headers column as this driver writes it, and as a hand-written row of
// the transactional enqueue may hold it, read the same way through the one-pass and the lenient
// decoding.
func TestDecodeHeaders(t *testing.T) {
	for _, c := range []struct {
		column string
		want   map[string][]string
		err    string
	}{
		{column: ``, want: map[string][]string{}},
		{column: `{}`, want: map[string][]string{}},
		{column: `null`, want: map[string][]string{}},
		{column: `{"a":["1","2"],"b":[]}`, want: map[string][]string{"a": {"1", "2"}, "b": {}}},
		{column: `{"a":null,"b":["x"]}`, want: map[string][]string{"b": {"x"}}},
		{column: `{"a":"one","b":["x"]}`, want: map[string][]string{"a": {"one"}, "b": {"x"}}},
		{column: `{"a":"one","b":null}`, want: map[string][]string{"a": {"one"}}},
		{column: `{"a":1}`, err: `header "a" is 1`},
		{column: `[1]`, err: "not a JSON object"},
	} {
		got, err := decodeHeaders([]byte(c.column))
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%s: error %v, want one saying %q", c.column, err, c.err)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s: %#v, %v; want %#v", c.column, got, err, c.want)
		}
	}
}

func BenchmarkDecodeHeaders(b *testing.B) {
	column := []byte(`{"traceparent":["00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"],"x-tenant":["acme"]}`)
	for b.Loop() {
		if _, err := decodeHeaders(column); err != nil {
			b.Fatal(err)
		}
	}
}
