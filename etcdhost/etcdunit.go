package etcdhost

import (
	"fmt"
	"path/filepath"
	"strings"

	"gopkg.in/yaml.v3"
)

// EtcdConfig is how a host's etcd unit starts etcd: the settings a restore
// must agree with. Each comes from a flag, the environment (ETCD_*, including
// EnvironmentFile=) or a --config-file, in etcd's own order of precedence.
type EtcdConfig struct {
	Binary        string `json:"binary"`
	Name          string `json:"name"`
	DataDir       string `json:"data_dir"`
	WalDir        string `json:"wal_dir,omitempty"`
	PeerURL       string `json:"initial_advertise_peer_urls"`
	ClientURLs    string `json:"advertise_client_urls"`
	CertFile      string `json:"cert_file,omitempty"`
	KeyFile       string `json:"key_file,omitempty"`
	TrustedCAFile string `json:"trusted_ca_file,omitempty"`
	// The peer side: etcd presents PeerCertFile to its peers and checks
	// theirs against PeerTrustedCAFile.
	PeerCertFile      string `json:"peer_cert_file,omitempty"`
	PeerTrustedCAFile string `json:"peer_trusted_ca_file,omitempty"`
	User              string `json:"user"`
	ConfigFile        string `json:"config_file,omitempty"`
	// From says where each setting was read, for messages.
	From map[string]string `json:"from"`

	// QuotaBackendBytes is --quota-backend-bytes as written ("" when unset: etcd's default).
	QuotaBackendBytes string `json:"quota_backend_bytes,omitempty"`
}

// etcdSettings are the flags a restore reads, and their config-file keys.
var etcdSettings = []struct{ flag, yamlKey string }{
	{"name", "name"},
	{"data-dir", "data-dir"},
	{"wal-dir", "wal-dir"},
	{"initial-advertise-peer-urls", "initial-advertise-peer-urls"},
	{"advertise-client-urls", "advertise-client-urls"},
	{"cert-file", "client-transport-security.cert-file"},
	{"key-file", "client-transport-security.key-file"},
	{"trusted-ca-file", "client-transport-security.trusted-ca-file"},
	{"peer-cert-file", "peer-transport-security.cert-file"},
	{"peer-trusted-ca-file", "peer-transport-security.trusted-ca-file"},
	{"quota-backend-bytes", "quota-backend-bytes"},
}

// NeededFiles are the files ResolveEtcd wants read: environment files and the
// --config-file. Read them on the host and pass their contents in.
func (u *Unit) NeededFiles() []string {
	var files []string
	for _, ef := range u.EnvironmentFiles {
		files = append(files, ef.Path)
	}
	env := u.env(nil)
	if v, ok := flagValue(expandEnv(u.ExecStart, env), "config-file"); ok {
		files = append(files, v)
	} else if v := env["ETCD_CONFIG_FILE"]; v != "" {
		files = append(files, v)
	}
	return files
}

// env merges Environment= with the environment files' contents.
func (u *Unit) env(files map[string]string) map[string]string {
	env := map[string]string{}
	for k, v := range u.Environment {
		env[k] = v
	}
	for _, ef := range u.EnvironmentFiles {
		if text, ok := files[ef.Path]; ok {
			for k, v := range ParseEnvFile(text) {
				env[k] = v
			}
		}
	}
	return env
}

// ResolveEtcd works out the effective etcd settings of a unit. files maps the
// paths of NeededFiles to their contents; a missing required environment file
// is an error, as it is for systemd.
func ResolveEtcd(u *Unit, files map[string]string) (*EtcdConfig, error) {
	for _, ef := range u.EnvironmentFiles {
		if _, ok := files[ef.Path]; !ok && !ef.Optional {
			return nil, fmt.Errorf("EnvironmentFile=%s does not exist on the host; systemd would refuse to start etcd", ef.Path)
		}
	}
	env := u.env(files)
	args := expandEnv(u.ExecStart, env)
	c := &EtcdConfig{Binary: args[0], User: u.User, From: map[string]string{}}
	if c.User == "" {
		c.User = "root"
	}
	field := map[string]*string{
		"name": &c.Name, "data-dir": &c.DataDir, "wal-dir": &c.WalDir,
		"initial-advertise-peer-urls": &c.PeerURL, "advertise-client-urls": &c.ClientURLs,
		"cert-file": &c.CertFile, "key-file": &c.KeyFile, "trusted-ca-file": &c.TrustedCAFile,
		"peer-cert-file": &c.PeerCertFile, "peer-trusted-ca-file": &c.PeerTrustedCAFile,
		"quota-backend-bytes": &c.QuotaBackendBytes,
	}
	set := func(flag, val, from string) {
		*field[flag] = val
		c.From[flag] = from
	}
	cfgFile, ok := flagValue(args, "config-file")
	if !ok && env["ETCD_CONFIG_FILE"] != "" {
		cfgFile = env["ETCD_CONFIG_FILE"]
	}
	if cfgFile != "" {
		// etcd ignores flags and environment when it reads a config file.
		text, ok := files[cfgFile]
		if !ok {
			return nil, fmt.Errorf("--config-file %s does not exist on the host", cfgFile)
		}
		var doc map[string]any
		if err := yaml.Unmarshal([]byte(text), &doc); err != nil {
			return nil, fmt.Errorf("--config-file %s: %v", cfgFile, err)
		}
		c.ConfigFile = cfgFile
		for _, s := range etcdSettings {
			if v, ok := yamlPath(doc, s.yamlKey); ok {
				set(s.flag, v, "config file "+cfgFile+" ("+s.yamlKey+")")
			}
		}
	} else {
		for _, s := range etcdSettings {
			envKey := "ETCD_" + strings.ToUpper(strings.ReplaceAll(s.flag, "-", "_"))
			if v, ok := flagValue(args, s.flag); ok {
				set(s.flag, v, "ExecStart --"+s.flag)
			} else if v, ok := env[envKey]; ok {
				set(s.flag, v, "environment "+envKey)
			}
		}
	}
	// etcd's own defaults, so a minimal unit is read as etcd reads it.
	if c.Name == "" {
		set("name", "default", "etcd default")
	}
	if c.DataDir == "" {
		set("data-dir", c.Name+".etcd", "etcd default")
	}
	if !filepath.IsAbs(c.DataDir) {
		wd := u.WorkingDirectory
		if wd == "" {
			wd = "/"
		}
		c.DataDir = filepath.Join(wd, c.DataDir)
	}
	if c.PeerURL == "" {
		set("initial-advertise-peer-urls", "http://localhost:2380", "etcd default")
	}
	if c.ClientURLs == "" {
		set("advertise-client-urls", "http://localhost:2379", "etcd default")
	}
	return c, nil
}

// flagValue finds --name=value, -name=value, --name value or -name value.
func flagValue(args []string, name string) (string, bool) {
	for i := 1; i < len(args); i++ {
		a := args[i]
		if !strings.HasPrefix(a, "-") {
			continue
		}
		a = strings.TrimLeft(a, "-")
		if a == name && i+1 < len(args) && !strings.HasPrefix(args[i+1], "-") {
			return args[i+1], true
		}
		if strings.HasPrefix(a, name+"=") {
			return a[len(name)+1:], true
		}
	}
	return "", false
}

// yamlPath reads a dotted key of a YAML document as a string.
func yamlPath(doc map[string]any, key string) (string, bool) {
	parts := strings.Split(key, ".")
	var cur any = doc
	for _, p := range parts {
		m, ok := cur.(map[string]any)
		if !ok {
			return "", false
		}
		if cur, ok = m[p]; !ok {
			return "", false
		}
	}
	switch v := cur.(type) {
	case string:
		return v, true
	case nil:
		return "", false
	default:
		return fmt.Sprint(v), true
	}
}

// FirstURL returns the first of a comma-separated URL list.
func FirstURL(list string) string {
	first, _, _ := strings.Cut(list, ",")
	return strings.TrimSpace(first)
}
