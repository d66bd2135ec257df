package config

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/dustin/go-humanize"
)

// options reads a raw option map (from .rr.yaml through viper, or from jobs.Declare's string map)
// key by key. Every accessor records an error that names the key and the accepted form, and
// Done reports unknown keys together with the allowed ones, so one bad key never passes silently.
type options struct {
	where string // "pipeline \"emails\"" or "sql.connections.default": prefix of every error
	raw   map[string]any
	seen  map[string]struct{}
	errs  []string
}

func newOptions(where string, raw map[string]any) *options {
	return &options{where: where, raw: raw, seen: map[string]struct{}{}}
}

func (o *options) fail(key, format string, args ...any) {
	o.errs = append(o.errs, fmt.Sprintf("%s: option %q: %s", o.where, key, fmt.Sprintf(format, args...)))
}

// ignore marks keys that are valid but not ours to read (for example `driver` in a Declare map).
func (o *options) ignore(keys ...string) {
	for _, k := range keys {
		o.seen[k] = struct{}{}
	}
}

func (o *options) lookup(key string) (any, bool) {
	o.seen[key] = struct{}{}
	v, ok := o.raw[key]
	if !ok || v == nil {
		return nil, false
	}
	if s, isStr := v.(string); isStr && strings.TrimSpace(s) == "" {
		return nil, false
	}
	return v, true
}

func (o *options) String(key, def string) string {
	v, ok := o.lookup(key)
	if !ok {
		return def
	}
	switch t := v.(type) {
	case string:
		return strings.TrimSpace(t)
	case int, int64, float64:
		return fmt.Sprint(t)
	default:
		o.fail(key, "must be a string, got %T", v)
		return def
	}
}

// Int accepts YAML numbers and decimal strings (Declare sends strings) within [minV, maxV].
func (o *options) Int(key string, def, minV, maxV int64) int64 {
	v, ok := o.lookup(key)
	if !ok {
		return def
	}
	var n int64
	switch t := v.(type) {
	case int:
		n = int64(t)
	case int64:
		n = t
	case int32:
		n = int64(t)
	case uint64:
		if t > math.MaxInt64 {
			o.fail(key, "must be an integer between %d and %d, got %v", minV, maxV, v)
			return def
		}
		n = int64(t)
	case float64:
		if t != math.Trunc(t) || math.Abs(t) > 1<<53 {
			o.fail(key, "must be an integer between %d and %d, got %v", minV, maxV, v)
			return def
		}
		n = int64(t)
	case string:
		parsed, err := strconv.ParseInt(strings.TrimSpace(t), 10, 64)
		if err != nil {
			o.fail(key, "must be an integer between %d and %d, got %q", minV, maxV, t)
			return def
		}
		n = parsed
	default:
		o.fail(key, "must be an integer between %d and %d, got %T", minV, maxV, v)
		return def
	}
	if n < minV || n > maxV {
		o.fail(key, "must be an integer between %d and %d, got %d", minV, maxV, n)
		return def
	}
	return n
}

// Duration accepts Go duration strings ("500ms", "2s", "1m") within [minV, maxV].
func (o *options) Duration(key string, def, minV, maxV time.Duration) time.Duration {
	v, ok := o.lookup(key)
	if !ok {
		return def
	}
	s, isStr := v.(string)
	if !isStr {
		o.fail(key, "must be a duration string such as \"500ms\" or \"2s\", got %v", v)
		return def
	}
	d, err := time.ParseDuration(strings.TrimSpace(s))
	if err != nil {
		o.fail(key, "must be a duration string such as \"500ms\" or \"2s\", got %q", s)
		return def
	}
	if d < minV || d > maxV {
		o.fail(key, "must be between %s and %s, got %s", minV, maxV, d)
		return def
	}
	return d
}

// Size accepts a number of bytes or a size with its unit ("512KB", "10MB", "10MiB") within [minV, maxV].
func (o *options) Size(key string, def, minV, maxV uint64) uint64 {
	v, ok := o.lookup(key)
	if !ok {
		return def
	}
	n, err := humanize.ParseBytes(strings.TrimSpace(fmt.Sprint(v)))
	if err != nil {
		o.fail(key, "must be a size such as 10MB, 512KiB or a number of bytes, got %q", fmt.Sprint(v))
		return def
	}
	if n < minV || n > maxV {
		o.fail(key, "must be between %s and %s, got %s", humanize.IBytes(minV), humanize.IBytes(maxV), humanize.IBytes(n))
		return def
	}
	return n
}

func (o *options) Bool(key string, def bool) bool {
	v, ok := o.lookup(key)
	if !ok {
		return def
	}
	switch t := v.(type) {
	case bool:
		return t
	case string:
		b, err := strconv.ParseBool(strings.TrimSpace(t))
		if err != nil {
			o.fail(key, "must be true or false, got %q", t)
			return def
		}
		return b
	default:
		o.fail(key, "must be true or false, got %v", v)
		return def
	}
}

// OneOf reads a string that must be one of the allowed values (compared case-insensitively).
func (o *options) OneOf(key, def string, allowed ...string) string {
	s := strings.ToLower(o.String(key, def))
	for _, a := range allowed {
		if s == a {
			return s
		}
	}
	o.fail(key, "must be one of %s, got %q", strings.Join(allowed, ", "), s)
	return def
}

// Map returns a nested map option (viper gives map[string]any).
func (o *options) Map(key string) map[string]any {
	v, ok := o.lookup(key)
	if !ok {
		return nil
	}
	m, isMap := v.(map[string]any)
	if !isMap {
		o.fail(key, "must be a mapping, got %T", v)
		return nil
	}
	return m
}

// Err reports every problem at once: unknown keys (with the allowed list) and bad values.
func (o *options) Err(allowed []string) error {
	var unknown []string
	for k := range o.raw {
		if _, ok := o.seen[k]; !ok {
			unknown = append(unknown, k)
		}
	}
	sort.Strings(unknown)
	errs := append([]string(nil), o.errs...)
	for _, k := range unknown {
		errs = append(errs, fmt.Sprintf("%s: unknown option %q (allowed: %s)", o.where, k, strings.Join(allowed, ", ")))
	}
	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("%s", strings.Join(errs, "; "))
}
