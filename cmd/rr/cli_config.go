package main

import (
	"errors"
	"fmt"
	"net"
	"net/rpc"
	"os"
	"strings"
	"time"

	configPlugin "github.com/roadrunner-server/config/v5"
	goridgeRpc "github.com/roadrunner-server/goridge/v3/pkg/rpc"
	"github.com/spf13/viper"
)

// readConfig reads the config as the config plugin will see it, for what the CLI itself needs
// (the endure section, rpc.listen): -o overrides applied, ${VAR} and ${VAR:-default} expanded,
// `include` files merged. The stock rr's RPC client reads it the same way.
func readConfig(g *globalFlags) (*viper.Viper, error) {
	v := viper.New()
	v.SetConfigFile(g.config)
	if err := v.ReadInConfig(); err != nil {
		return nil, err
	}
	for _, o := range g.overrides {
		key, value, err := parseOverride(o)
		if err != nil {
			return nil, err
		}
		v.Set(key, value)
	}
	ver, ok := v.Get("version").(string)
	if !ok {
		return nil, errors.New(`rr configuration file should contain a version as a string, e.g: version: "3"`)
	}
	expandEnv(v)
	for _, file := range v.GetStringSlice("include") {
		inc := viper.New()
		inc.SetConfigFile(file)
		if err := inc.ReadInConfig(); err != nil {
			return nil, fmt.Errorf("failed to handle includes: %w", err)
		}
		if iv, _ := inc.Get("version").(string); iv != ver {
			return nil, fmt.Errorf("failed to handle includes: version in included file %s must be the same as in root", file)
		}
		expandEnv(inc)
		for key, val := range inc.AllSettings() {
			v.Set(key, val)
		}
	}
	return v, nil
}

// parseOverride splits -o key=value as the stock rr does: the value may be quoted.
func parseOverride(flag string) (key, value string, err error) {
	key, value, ok := strings.Cut(strings.TrimLeft(flag, " \"'`"), "=")
	key, value = strings.Trim(key, " \n\t"), strings.Trim(value, " \n\t")
	switch {
	case !ok:
		return "", "", fmt.Errorf("invalid flag `%s`: use -o key.path=value", flag)
	case key == "":
		return "", "", errors.New("key should not be empty")
	case value == "":
		return "", "", errors.New("value should not be empty")
	}
	if q := value[0]; q == '"' || q == '\'' || q == '`' {
		value = strings.ReplaceAll(strings.Trim(value, string(q)), `\`+string(q), string(q))
	}
	return key, value, nil
}

// expandEnv replaces ${VAR} in string values and string lists, with the config plugin's rules.
func expandEnv(v *viper.Viper) {
	for _, key := range v.AllKeys() {
		switch val := v.Get(key).(type) {
		case string:
			v.Set(key, configPlugin.ExpandVal(val, os.Getenv))
		case []any:
			out := make([]any, len(val))
			for i, item := range val {
				if s, ok := item.(string); ok {
					item = configPlugin.ExpandVal(s, os.Getenv)
				}
				out[i] = item
			}
			v.Set(key, out)
		}
	}
}

// dialRPC connects to the rpc plugin of the rr serving this config.
func dialRPC(g *globalFlags) (*rpc.Client, error) {
	v, err := readConfig(g)
	if err != nil {
		return nil, err
	}
	if !v.IsSet("rpc") {
		return nil, errors.New("rpc service not specified in the configuration. Tip: add\n rpc:\n   listen: tcp://127.0.0.1:6001")
	}
	network, addr, ok := strings.Cut(v.GetString("rpc.listen"), "://")
	if !ok {
		return nil, errors.New("invalid socket DSN (tcp://:6001, unix://file.sock)")
	}
	conn, err := net.DialTimeout(network, addr, 3*time.Second)
	if err != nil {
		return nil, fmt.Errorf("%w (is `rr serve` running?)", err)
	}
	return rpc.NewClientWithCodec(goridgeRpc.NewClientCodec(conn)), nil
}
