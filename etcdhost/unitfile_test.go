package etcdhost

import (
	"reflect"
	"strings"
	"testing"
)

const kubeaszUnit = `# /etc/systemd/system/etcd.service
[Unit]
Description=Etcd Server
After=network.target

[Service]
Type=notify
WorkingDirectory=/var/lib/etcd
ExecStart=/opt/kube/bin/etcd \
  --name=etcd-10.0.0.1 \
  --cert-file=/etc/kubernetes/ssl/etcd.pem \
  --key-file=/etc/kubernetes/ssl/etcd-key.pem \
  --trusted-ca-file=/etc/kubernetes/ssl/ca.pem \
  --initial-advertise-peer-urls=https://10.0.0.1:2380 \
  --advertise-client-urls=https://10.0.0.1:2379 \
  --initial-cluster-token=etcd-cluster-0 \
  --data-dir=/var/lib/etcd \
  --wal-dir= \
  --snapshot-count=50000
Restart=always
`

func TestResolveKubeaszUnit(t *testing.T) {
	u, err := ParseUnit(kubeaszUnit)
	if err != nil {
		t.Fatal(err)
	}
	c, err := ResolveEtcd(u, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := EtcdConfig{Binary: "/opt/kube/bin/etcd", Name: "etcd-10.0.0.1", DataDir: "/var/lib/etcd",
		PeerURL: "https://10.0.0.1:2380", ClientURLs: "https://10.0.0.1:2379", CertFile: "/etc/kubernetes/ssl/etcd.pem",
		KeyFile: "/etc/kubernetes/ssl/etcd-key.pem", TrustedCAFile: "/etc/kubernetes/ssl/ca.pem", User: "root"}
	c.From = nil
	if !reflect.DeepEqual(*c, want) {
		t.Fatalf("got  %+v\nwant %+v", *c, want)
	}
}

func TestDropInResetsExecStartAndEnvFileAndConfigFile(t *testing.T) {
	text := kubeaszUnit + `
# /etc/systemd/system/etcd.service.d/10-env.conf
[Service]
User=etcd
EnvironmentFile=-/etc/default/etcd
EnvironmentFile=/etc/etcd/etcd.env
Environment="ETCD_WAL_DIR=/wal/x" OTHER=1
ExecStart=
ExecStart=/usr/bin/etcd $DAEMON_ARGS
`
	u, err := ParseUnit(text)
	if err != nil {
		t.Fatal(err)
	}
	if got := u.NeededFiles(); !reflect.DeepEqual(got, []string{"/etc/default/etcd", "/etc/etcd/etcd.env"}) {
		t.Fatalf("needed files %v", got)
	}
	if _, err := ResolveEtcd(u, map[string]string{}); err == nil || !strings.Contains(err.Error(), "/etc/etcd/etcd.env") {
		t.Fatalf("a missing required EnvironmentFile must be an error, got %v", err)
	}
	c, err := ResolveEtcd(u, map[string]string{"/etc/etcd/etcd.env": `
# comment
ETCD_NAME="node-a"
ETCD_DATA_DIR=/data/etcd
DAEMON_ARGS="--initial-advertise-peer-urls https://10.0.0.9:2380"
`})
	if err != nil {
		t.Fatal(err)
	}
	if c.Name != "node-a" || c.DataDir != "/data/etcd" || c.WalDir != "/wal/x" || c.User != "etcd" || c.PeerURL != "https://10.0.0.9:2380" {
		t.Fatalf("got %+v", c)
	}
	if c.From["name"] != "environment ETCD_NAME" || c.From["initial-advertise-peer-urls"] != "ExecStart --initial-advertise-peer-urls" {
		t.Fatalf("sources %v", c.From)
	}

	cfg := `[Service]
ExecStart=/usr/bin/etcd --config-file /etc/etcd/etcd.yml --name=ignored
`
	u, err = ParseUnit(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if got := u.NeededFiles(); !reflect.DeepEqual(got, []string{"/etc/etcd/etcd.yml"}) {
		t.Fatalf("needed %v", got)
	}
	c, err = ResolveEtcd(u, map[string]string{"/etc/etcd/etcd.yml": "name: from-yaml\ndata-dir: /d\nclient-transport-security:\n  cert-file: /c.pem\n"})
	if err != nil {
		t.Fatal(err)
	}
	if c.Name != "from-yaml" || c.DataDir != "/d" || c.CertFile != "/c.pem" || c.ConfigFile != "/etc/etcd/etcd.yml" {
		t.Fatalf("config file not used: %+v", c)
	}
}

func TestDefaultsAndRelativeDataDir(t *testing.T) {
	u, err := ParseUnit("[Service]\nWorkingDirectory=/srv\nExecStart=-/usr/bin/etcd\n")
	if err != nil {
		t.Fatal(err)
	}
	c, err := ResolveEtcd(u, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Binary != "/usr/bin/etcd" || c.Name != "default" || c.DataDir != "/srv/default.etcd" {
		t.Fatalf("got %+v", c)
	}
	if _, err := ParseUnit("[Unit]\nDescription=x\n"); err == nil {
		t.Fatal("a unit without ExecStart must be refused")
	}
}
