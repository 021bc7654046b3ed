package etcdhost

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/ezrestore/ezrestore/inventory"
	"github.com/ezrestore/ezrestore/transport"
)

// kubeadmEtcd is the shape kubeadm v1.34 writes to
// /etc/kubernetes/manifests/etcd.yaml (trimmed to what matters here).
const kubeadmEtcd = `apiVersion: v1
kind: Pod
metadata:
  labels:
    component: etcd
    tier: control-plane
  name: etcd
  namespace: kube-system
spec:
  containers:
  - command:
    - etcd
    - --advertise-client-urls=https://10.0.0.11:2379
    - --cert-file=/etc/kubernetes/pki/etcd/server.crt
    - --client-cert-auth=true
    - --data-dir=/var/lib/etcd
    - --initial-advertise-peer-urls=https://10.0.0.11:2380
    - --initial-cluster=cp1=https://10.0.0.11:2380
    - --key-file=/etc/kubernetes/pki/etcd/server.key
    - --listen-client-urls=https://127.0.0.1:2379,https://10.0.0.11:2379
    - --name=cp1
    - --peer-cert-file=/etc/kubernetes/pki/etcd/peer.crt
    - --peer-trusted-ca-file=/etc/kubernetes/pki/etcd/ca.crt
    - --trusted-ca-file=/etc/kubernetes/pki/etcd/ca.crt
    image: registry.k8s.io/etcd:3.6.5-0
    name: etcd
    volumeMounts:
    - mountPath: /var/lib/etcd
      name: etcd-data
    - mountPath: /etc/kubernetes/pki/etcd
      name: etcd-certs
  hostNetwork: true
  volumes:
  - hostPath:
      path: /etc/kubernetes/pki/etcd
      type: DirectoryOrCreate
    name: etcd-certs
  - hostPath:
      path: /var/lib/etcd
      type: DirectoryOrCreate
    name: etcd-data
status: {}
`

func TestParseEtcdManifestKubeadm(t *testing.T) {
	c, err := ParseEtcdManifest(EtcdManifestPath, kubeadmEtcd)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"name": c.Name, "data": c.DataDir, "peer": c.PeerURL, "client": c.ClientURLs,
		"cert": c.CertFile, "key": c.KeyFile, "ca": c.TrustedCAFile, "peercert": c.PeerCertFile, "wal": c.WalDir,
	}
	for k, v := range map[string]string{
		"name": "cp1", "data": "/var/lib/etcd", "peer": "https://10.0.0.11:2380", "client": "https://10.0.0.11:2379",
		"cert": "/etc/kubernetes/pki/etcd/server.crt", "key": "/etc/kubernetes/pki/etcd/server.key",
		"ca": "/etc/kubernetes/pki/etcd/ca.crt", "peercert": "/etc/kubernetes/pki/etcd/peer.crt", "wal": "",
	} {
		if want[k] != v {
			t.Errorf("%s = %q, want %q", k, want[k], v)
		}
	}
	sp := c.StaticPod
	if sp == nil || sp.ImageVersion != "3.6.5" || sp.Container != "etcd" || sp.Namespace != "kube-system" || sp.ManifestDir != KubeletManifestDir {
		t.Fatalf("static pod = %+v", sp)
	}
	if !strings.Contains(c.From["data-dir"], EtcdManifestPath) {
		t.Errorf("From[data-dir] = %q, want the manifest named", c.From["data-dir"])
	}
}

// A path inside the container is taken through its hostPath volume to
// where it is on the host, the deepest mount winning; a WAL dir too.
func TestParseEtcdManifestHostPaths(t *testing.T) {
	m := strings.NewReplacer(
		"      path: /var/lib/etcd\n", "      path: /data/etcd\n",
		"    - --data-dir=/var/lib/etcd\n", "    - --data-dir=/var/lib/etcd/data\n    - --wal-dir=/var/lib/etcd/wal\n",
		"image: registry.k8s.io/etcd:3.6.5-0", "image: quay.io/coreos/etcd:v3.5.21",
	).Replace(kubeadmEtcd)
	c, err := ParseEtcdManifest("/etc/kubernetes/manifests/etcd.yaml", m)
	if err != nil {
		t.Fatal(err)
	}
	if c.DataDir != "/data/etcd/data" || c.WalDir != "/data/etcd/wal" {
		t.Fatalf("data %q wal %q, want /data/etcd/data and /data/etcd/wal", c.DataDir, c.WalDir)
	}
	if c.StaticPod.ImageVersion != "3.5.21" {
		t.Fatalf("image version %q", c.StaticPod.ImageVersion)
	}
	if got := c.StaticPod.ContainerPaths["/data/etcd/data"]; got != "/var/lib/etcd/data" {
		t.Fatalf("container path of the data dir = %q", got)
	}
}

// The trap: --data-dir and the hostPath volume disagree, so etcd would
// write inside the container; refused, naming both.
func TestParseEtcdManifestDataDirOutsideVolume(t *testing.T) {
	m := strings.Replace(kubeadmEtcd, "--data-dir=/var/lib/etcd\n", "--data-dir=/var/lib/etcd-new\n", 1)
	_, err := ParseEtcdManifest(EtcdManifestPath, m)
	if err == nil {
		t.Fatal("a data dir outside every volume was accepted")
	}
	for _, want := range []string{EtcdManifestPath, "--data-dir=/var/lib/etcd-new", "volume etcd-data: hostPath /var/lib/etcd mounted at /var/lib/etcd"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not say %q: %v", want, err)
		}
	}
	m = strings.Replace(kubeadmEtcd, "  - hostPath:\n      path: /var/lib/etcd\n      type: DirectoryOrCreate\n    name: etcd-data\n", "  - emptyDir: {}\n    name: etcd-data\n", 1)
	if _, err := ParseEtcdManifest(EtcdManifestPath, m); err == nil || !strings.Contains(err.Error(), "not a hostPath volume") {
		t.Fatalf("a data dir on an emptyDir: %v", err)
	}
}

func TestParseEtcdManifestBad(t *testing.T) {
	for name, text := range map[string]string{
		"not yaml":     "{",
		"no etcd":      strings.ReplaceAll(strings.ReplaceAll(kubeadmEtcd, "    - etcd\n", "    - sleep\n"), "name: etcd\n    volumeMounts", "name: other\n    volumeMounts"),
		"a deployment": strings.Replace(kubeadmEtcd, "kind: Pod", "kind: Deployment", 1),
	} {
		if _, err := ParseEtcdManifest(EtcdManifestPath, text); err == nil || !strings.Contains(err.Error(), EtcdManifestPath) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestStaticPodConfigChoice(t *testing.T) {
	// A unit and a manifest both: refused.
	s := map[string]string{"unit": "[Service]\nExecStart=/usr/bin/etcd\n", "manifest": kubeadmEtcd, "podactive": "active"}
	if _, ok, err := staticPodConfig(context.Background(), nil, s); !ok || err == nil || !strings.Contains(err.Error(), "both") {
		t.Fatalf("unit and manifest: ok=%v err=%v", ok, err)
	}
	// A masked unit and a manifest: the manifest.
	s = map[string]string{"unit": "# Unit etcd.service is masked.", "manifest": kubeadmEtcd, "podactive": "active"}
	c, ok, err := staticPodConfig(context.Background(), nil, s)
	if !ok || err != nil || c.Name != "cp1" || s["active"] != "active" {
		t.Fatalf("masked unit: %+v ok=%v err=%v active=%q", c, ok, err, s["active"])
	}
	// No manifest: the unit is read as before.
	if _, ok, _ := staticPodConfig(context.Background(), nil, map[string]string{"nomanifest": "", "nounit": ""}); ok {
		t.Fatal("no manifest read as a static pod")
	}
}

func TestStaticPodSeen(t *testing.T) {
	for _, c := range []struct {
		s    map[string]string
		want bool
	}{
		{map[string]string{"unit": "# Unit etcd.service is masked.", "manifest": kubeadmEtcd}, true},
		{map[string]string{"nounit": "", "manifest": kubeadmEtcd}, true},
		{map[string]string{"unit": "[Service]\nExecStart=/usr/bin/etcd\n", "manifest": kubeadmEtcd}, false},
		{map[string]string{"nounit": "", "nomanifest": ""}, false},
	} {
		if got := StaticPodSeen(c.s); got != c.want {
			t.Errorf("%v: %v, want %v", c.s, got, c.want)
		}
	}
}

// fileConn answers `cat -- FILE` with the text it holds for FILE.
type fileConn struct{ files map[string]string }

func (fileConn) Host() *inventory.Host { return &inventory.Host{Name: "m1"} }
func (c fileConn) Run(_ context.Context, cmd string) (transport.Result, error) {
	for path, text := range c.files {
		if cmd == "cat -- "+transport.Quote(path) {
			return transport.Result{Stdout: []byte(text)}, nil
		}
	}
	return transport.Result{ExitCode: 1, Stderr: []byte("No such file or directory")}, nil
}
func (fileConn) Upload(context.Context, string, string, os.FileMode, func(int64)) error { return nil }
func (fileConn) Download(context.Context, string, string, func(int64)) error            { return nil }
func (fileConn) Close() error                                                           { return nil }

// kube-apiserver's --encryption-provider-config, read from its static pod
// and taken through its hostPath volume (kubeadm mounts /etc/kubernetes/pki).
func TestManifestFlag(t *testing.T) {
	const apiserver = `apiVersion: v1
kind: Pod
metadata: {name: kube-apiserver, namespace: kube-system}
spec:
  containers:
  - name: kube-apiserver
    command:
    - kube-apiserver
    - --encryption-provider-config=/etc/kubernetes/enc/config.yaml
    volumeMounts:
    - {mountPath: /etc/kubernetes/enc, name: enc, readOnly: true}
  volumes:
  - {hostPath: {path: /srv/enc, type: Directory}, name: enc}
`
	file := KubeletManifestDir + "/kube-apiserver.yaml"
	c := fileConn{files: map[string]string{file: apiserver}}
	v, found, err := ManifestFlag(context.Background(), c, file, "encryption-provider-config", true)
	if err != nil || !found || v != "/srv/enc/config.yaml" {
		t.Fatalf("= %q %v %v, want /srv/enc/config.yaml", v, found, err)
	}
	if _, found, err := ManifestFlag(context.Background(), c, file, "audit-policy-file", true); found || err != nil {
		t.Fatalf("an unset flag: found %v err %v", found, err)
	}
	if _, _, err := ManifestFlag(context.Background(), c, KubeletManifestDir+"/none.yaml", "x", false); err == nil || !strings.Contains(err.Error(), "none.yaml") {
		t.Fatalf("a missing manifest: %v", err)
	}
}
