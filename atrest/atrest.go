// Package atrest answers one question before a snapshot's values are given
// back to a cluster (a full restore, or recover): can every apiserver still
// read them? A value the apiserver encrypted at rest names its provider and
// key (k8s:enc:aescbc:v1:<key>:...); an apiserver whose
// EncryptionConfiguration (--encryption-provider-config) no longer holds
// that key cannot read it, and the object is lost to the API however well
// etcd holds it. So the snapshot's encrypted values are tallied by
// resource, provider and key, every master's configuration is read over
// SSH, and a key missing on any master is a refusal that names it.
//
// It imports etcdhost, objects, snapshot and transport only: restore's
// preflight (steps) and recover both use it.
package atrest

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/ezrestore/ezrestore/etcdhost"
	"github.com/ezrestore/ezrestore/objects"
	"github.com/ezrestore/ezrestore/snapshot"
	"github.com/ezrestore/ezrestore/transport"
)

// Use is the values of one resource encrypted with one provider's key.
type Use struct {
	// GroupResource is the resource (secrets, configmaps).
	GroupResource string `json:"resource"`
	Provider      string `json:"provider"`
	Key           string `json:"key"`
	Count         int    `json:"count"`
	// Example is one of the etcd keys, for messages.
	Example string `json:"example"`
	// sample is one of the values, at sampleKey: the proof that a master's
	// key of the same name is the same key is that it decrypts it.
	sample    []byte
	sampleKey string
}

// Usage tallies the encrypted values of a snapshot (or of the objects a
// recover writes back).
type Usage struct {
	uses map[[3]string]*Use
}

// Add counts value, stored at etcd key, if it is encrypted at rest.
func (u *Usage) Add(key string, value []byte) {
	if provider, name, ok := objects.EncryptedKeyOf(value); ok {
		u.add(key, provider, name, value, key)
	}
}

// add counts key, encrypted with provider's key name; sample is one value so encrypted.
func (u *Usage) add(key, provider, name string, sample []byte, sampleKey string) {
	gr := "(unknown resource)"
	if ref, err := objects.ParseKey(key); err == nil {
		gr = ref.Resource.GroupResource()
	}
	if u.uses == nil {
		u.uses = map[[3]string]*Use{}
	}
	k := [3]string{gr, provider, name}
	use := u.uses[k]
	if use == nil {
		use = &Use{GroupResource: gr, Provider: provider, Key: name, Example: key, sample: append([]byte(nil), sample...), sampleKey: sampleKey}
		u.uses[k] = use
	}
	use.Example = min(use.Example, key)
	use.Count++
}

// Uses are the tallies, by resource, provider and key.
func (u *Usage) Uses() []Use {
	out := make([]Use, 0, len(u.uses))
	for _, use := range u.uses {
		out = append(out, *use)
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.GroupResource != b.GroupResource {
			return a.GroupResource < b.GroupResource
		}
		if a.Provider != b.Provider {
			return a.Provider < b.Provider
		}
		return a.Key < b.Key
	})
	return out
}

// Empty is true when no value is encrypted.
func (u *Usage) Empty() bool { return len(u.uses) == 0 }

// Master is one master's EncryptionConfiguration as its kube-apiserver
// unit names it; Config is nil when the unit names none.
type Master struct {
	Host   string
	Path   string
	Config *objects.EncryptionConfig
}

// ReadMaster reads, over conn, the --encryption-provider-config of the
// host's kube-apiserver unit and the file it names (as root; the keys stay
// in memory).
func ReadMaster(ctx context.Context, conn transport.Conn) (*Master, error) {
	host := conn.Host().Name
	path, found, err := etcdhost.UnitFlag(ctx, conn, "kube-apiserver.service", "encryption-provider-config")
	if err != nil {
		// kubeadm: the apiserver is a static pod of the kubelet.
		var manifestErr error
		if path, found, manifestErr = etcdhost.ManifestFlag(ctx, conn, etcdhost.KubeletManifestDir+"/kube-apiserver.yaml", "encryption-provider-config", true); manifestErr != nil {
			return nil, fmt.Errorf("host %s: read kube-apiserver.service: %w (nor a static pod: %v)", host, err, manifestErr)
		}
	}
	m := &Master{Host: host}
	if !found {
		return m, nil
	}
	m.Path = path
	res, err := conn.Run(ctx, "cat -- "+transport.Quote(path))
	if err != nil {
		return nil, fmt.Errorf("host %s: read %s: %w", host, path, err)
	}
	if res.ExitCode != 0 {
		return nil, fmt.Errorf("host %s: read %s (kube-apiserver's --encryption-provider-config): %s", host, path, strings.TrimSpace(string(res.Stderr)))
	}
	if m.Config, err = parseConfig(host, path, res.Stdout); err != nil {
		return nil, err
	}
	return m, nil
}

// parseConfig parses a configuration read from host; messages name the
// host and its file.
func parseConfig(host, path string, data []byte) (*objects.EncryptionConfig, error) {
	c, err := objects.ParseEncryptionConfigData(path, data)
	if err != nil {
		return nil, fmt.Errorf("host %s: %w", host, err)
	}
	return c, nil
}

// Check says whether every master can read every use: its configuration
// has, for that resource, a provider of that type holding that key, and
// the key decrypts a value of the use (a key of the same name with another
// secret does not). The error names each use a master cannot read, with
// the count, the provider and the key; what names the values ("the
// snapshot holds", "recover writes back").
func Check(uses []Use, masters []*Master, what string) error {
	var problems []string
	for _, use := range uses {
		var lacking []string
		for _, m := range masters {
			if why := cannotRead(use, m); why != "" {
				lacking = append(lacking, fmt.Sprintf("master %s: %s", m.Host, why))
			}
		}
		if len(lacking) > 0 {
			problems = append(problems, fmt.Sprintf("%s %d %s encrypted with %s key %q (%s, ...); an apiserver without that key cannot read them:\n    %s",
				what, use.Count, use.GroupResource, use.Provider, use.Key, use.Example, strings.Join(lacking, "\n    ")))
		}
	}
	if len(problems) == 0 {
		return nil
	}
	return fmt.Errorf("%s\n  Put the key back in the EncryptionConfiguration of every master (as a further key of its provider: the first key writes, every key reads), restart kube-apiserver there, and run this again",
		strings.Join(problems, "\n  "))
}

// cannotRead says why master m cannot read use, or "".
func cannotRead(use Use, m *Master) string {
	if m.Config == nil {
		return "kube-apiserver has no --encryption-provider-config"
	}
	var have []string
	for _, p := range m.Config.ProvidersFor(use.GroupResource) {
		for _, k := range p.Keys {
			if p.Type == use.Provider && k == use.Key {
				if use.Provider == "kms" {
					return "" // only the KMS plugin can tell; the name is what the apiserver goes by
				}
				if _, err := m.Config.Decrypt(use.sampleKey, use.sample); err != nil {
					return fmt.Sprintf("%s holds a %s key %q, but it does not decrypt the value (another secret under the same name)", m.Path, p.Type, k)
				}
				return ""
			}
			have = append(have, p.Type+" "+k)
		}
	}
	if len(have) == 0 {
		return fmt.Sprintf("%s has no key for %s", m.Path, use.GroupResource)
	}
	return fmt.Sprintf("%s has %s for %s, not %s %s", m.Path, strings.Join(have, ", "), use.GroupResource, use.Provider, use.Key)
}

// Scan tallies the values encrypted at rest that the snapshot at path holds
// live. It streams through the file once, keeping only which keys are
// encrypted with what (a key rewritten in the clear, or deleted, drops out).
func Scan(path string) (*Usage, error) {
	type enc struct{ provider, key string }
	live := map[string]enc{}
	type sample struct {
		key   string
		value []byte
	}
	samples := map[enc]sample{}
	err := snapshot.History(path, func(key, value []byte, deleted bool) error {
		provider, name, ok := objects.EncryptedKeyOf(value)
		if deleted || !ok {
			delete(live, string(key))
			return nil
		}
		e := enc{provider, name}
		live[string(key)] = e
		if _, ok := samples[e]; !ok {
			samples[e] = sample{string(key), append([]byte(nil), value...)}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	u := &Usage{}
	for key, e := range live {
		u.add(key, e.provider, e.key, samples[e].value, samples[e].key)
	}
	return u, nil
}
