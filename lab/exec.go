package lab

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os/exec"
	"sort"
	"strings"
	"time"

	"github.com/ezrestore/ezrestore/transport"
)

// SSHArgs are the OpenSSH client arguments that reach host addr as root with
// the lab's key and strict host-key checking against the lab's known_hosts,
// up to and including the destination; a command may follow.
func (l *Lab) SSHArgs(addr string) []string {
	args := l.directSSHArgs()
	if h, err := l.Host(addr); err == nil {
		args = append(args, l.jumpSSHArgs(h)...) // through the jump host, if the lab has one
	}
	return append(args, "root@"+addr)
}

// DirectSSHArgs are SSHArgs without the jump host: on a lab with one, they
// show that a host behind it refuses a direct login.
func (l *Lab) DirectSSHArgs(addr string) []string {
	return append(l.directSSHArgs(), "root@"+addr)
}

// directSSHArgs are the lab's OpenSSH options, up to the destination.
func (l *Lab) directSSHArgs() []string {
	return []string{
		"-F", "/dev/null",
		"-i", l.Dir.PrivateKey(),
		"-o", "IdentitiesOnly=yes",
		"-o", "UserKnownHostsFile=" + l.Dir.KnownHosts(),
		"-o", "GlobalKnownHostsFile=/dev/null",
		"-o", "StrictHostKeyChecking=yes",
		"-o", "BatchMode=yes",
		"-o", "ConnectTimeout=5",
		"-o", "LogLevel=ERROR",
	}
}

// Exec runs shellCmd (a POSIX sh command line) as root on the host with
// address addr, through the OpenSSH client with the lab's key and strict
// host-key checking: the same path an operator's tools take. It returns the
// command's stdout; a non-zero exit or a connection failure is an error that
// carries stderr.
func (l *Lab) Exec(ctx context.Context, addr, shellCmd string) ([]byte, error) {
	h, err := l.Host(addr)
	if err != nil {
		return nil, err
	}
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, "ssh", append(l.SSHArgs(h.Address), "--", shellCmd)...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.WaitDelay = 2 * time.Second
	if err := cmd.Run(); err != nil {
		return stdout.Bytes(), &ExecError{Addr: addr, Cmd: shellCmd, Err: err, Stderr: strings.TrimSpace(stderr.String())}
	}
	return stdout.Bytes(), nil
}

// ExecError is a failed Exec: the command's exit status (or ssh's 255 when
// the host could not be reached) and its stderr.
type ExecError struct {
	Addr, Cmd string
	Err       error
	Stderr    string
}

func (e *ExecError) Error() string {
	return fmt.Sprintf("%s: %s: %v: %s", e.Addr, e.Cmd, e.Err, e.Stderr)
}

func (e *ExecError) Unwrap() error { return e.Err }

func dialOnce(addr string) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	return c.Close()
}

// EtcdctlArgs are the etcdctl flags that reach the etcd on host addr over TLS
// with the host's own certificates (paths on the host).
func EtcdctlArgs(addr string) []string {
	return []string{
		"--endpoints=https://" + addr + ":2379",
		"--cacert=" + CADir + "/ca.pem",
		"--cert=" + CADir + "/etcd.pem",
		"--key=" + CADir + "/etcd-key.pem",
	}
}

// EtcdctlEnv is the environment etcdctl needs on the host: ETCDCTL_API=3,
// which etcdctl 3.4 wants and 3.6+ warns about (harmlessly) on stderr.
func EtcdctlEnv(addr string) []string { return []string{"ETCDCTL_API=3"} }

// EtcdctlCmd is a shell command line running the host's own etcdctl against
// its own etcd with TLS; append etcdctl arguments (already quoted). It works
// with every etcd version the lab runs; Lab.EtcdctlCmd leaves out the
// environment the lab's version does not need.
func EtcdctlCmd(addr string) string {
	return etcdctlCmd(EtcdctlEnv(addr), addr)
}

// EtcdctlEnv is the environment the lab's etcdctl needs on host addr.
func (l *Lab) EtcdctlEnv(addr string) []string {
	if strings.HasPrefix(l.EtcdRelease, "3.4") {
		return EtcdctlEnv(addr)
	}
	return nil
}

// EtcdctlCmd is EtcdctlCmd for the lab's etcd version.
func (l *Lab) EtcdctlCmd(addr string) string {
	if l.kubeadm() {
		return kubeadmEtcdctlCmd(addr)
	}
	return etcdctlCmd(l.EtcdctlEnv(addr), addr)
}

func etcdctlCmd(env []string, addr string) string {
	q := append([]string{}, env...)
	q = append(q, BinDir+"/etcdctl")
	for _, a := range EtcdctlArgs(addr) {
		q = append(q, transport.Quote(a))
	}
	return strings.Join(q, " ")
}

// MemberStatus is what one etcd member says about itself.
type MemberStatus struct {
	Address   string
	Name      string
	MemberID  uint64
	ClusterID uint64
	Leader    uint64
	Revision  int64
	RaftIndex uint64
	Version   string
	Members   int // size of the member list it reports
	// MemberList is the member list it reports, as sorted "name=peerURL".
	MemberList []string
	Err        string
}

// Health is the state of the lab's etcd cluster as every member reports it.
type Health struct {
	Members  []MemberStatus
	Healthy  bool
	Problems []string
}

func (h *Health) String() string {
	var b strings.Builder
	for _, m := range h.Members {
		if m.Err != "" {
			fmt.Fprintf(&b, "  %s: %s\n", m.Address, m.Err)
			continue
		}
		role := "follower"
		if m.Leader == m.MemberID {
			role = "leader"
		}
		fmt.Fprintf(&b, "  %s: %s %s id=%x cluster=%x rev=%d members=%d\n", m.Address, m.Version, role, m.MemberID, m.ClusterID, m.Revision, m.Members)
	}
	if h.Healthy {
		b.WriteString("  healthy\n")
	}
	for _, p := range h.Problems {
		fmt.Fprintf(&b, "  problem: %s\n", p)
	}
	return b.String()
}

type endpointStatusJSON []struct {
	Endpoint string
	Status   struct {
		Header struct {
			ClusterID uint64 `json:"cluster_id"`
			MemberID  uint64 `json:"member_id"`
			Revision  int64  `json:"revision"`
		} `json:"header"`
		Version   string `json:"version"`
		Leader    uint64 `json:"leader"`
		RaftIndex uint64 `json:"raftIndex"`
	}
}

type memberListJSON struct {
	Members []struct {
		ID       uint64   `json:"ID"`
		Name     string   `json:"name"`
		PeerURLs []string `json:"peerURLs"`
	} `json:"members"`
}

// EtcdHealth asks every etcd member, with the etcdctl on its own host over
// TLS, for its status and member list; healthy means every member answers,
// exactly one leader, one cluster ID, and every member lists exactly the
// lab's members with kubeasz's names and peer URLs.
func (l *Lab) EtcdHealth(ctx context.Context) *Health {
	hosts := l.EtcdHosts()
	res := make([]MemberStatus, len(hosts))
	done := make(chan struct{})
	for i, h := range hosts {
		go func() {
			defer func() { done <- struct{}{} }()
			res[i] = l.memberStatus(ctx, h)
		}()
	}
	for range hosts {
		<-done
	}
	hl := &Health{Members: res}
	var want []string
	for _, h := range hosts {
		want = append(want, l.MemberName(h.Address)+"=https://"+h.Address+":2380")
	}
	sort.Strings(want)
	leaders, clusters := map[uint64]bool{}, map[uint64]bool{}
	for _, m := range res {
		if m.Err != "" {
			hl.Problems = append(hl.Problems, m.Address+" does not answer")
			continue
		}
		leaders[m.Leader] = true
		clusters[m.ClusterID] = true
		if strings.Join(m.MemberList, " ") != strings.Join(want, " ") {
			hl.Problems = append(hl.Problems, fmt.Sprintf("%s lists members %v, want %v", m.Address, m.MemberList, want))
		}
		if m.Name != "" && m.Name != l.MemberName(m.Address) {
			hl.Problems = append(hl.Problems, fmt.Sprintf("%s is member %s, want %s", m.Address, m.Name, l.MemberName(m.Address)))
		}
	}
	if len(leaders) != 1 || leaders[0] {
		hl.Problems = append(hl.Problems, fmt.Sprintf("%d distinct leaders seen", len(leaders)))
	}
	if len(clusters) > 1 {
		hl.Problems = append(hl.Problems, fmt.Sprintf("%d cluster IDs seen", len(clusters)))
	}
	sort.Strings(hl.Problems)
	hl.Healthy = len(hl.Problems) == 0
	return hl
}

func (l *Lab) memberStatus(ctx context.Context, h Host) MemberStatus {
	ms := MemberStatus{Address: h.Address}
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	e := l.EtcdctlCmd(h.Address)
	out, err := l.Exec(ctx, h.Address, e+" --command-timeout=3s endpoint status -w json && echo '#####' && "+e+" --command-timeout=3s member list -w json")
	if err != nil {
		var ee *ExecError
		switch {
		case !l.Running(h.Address):
			ms.Err = "host is down"
		case errors.As(err, &ee):
			ms.Err = "no answer: " + lastLine(ee.Stderr)
		default:
			ms.Err = "no answer: " + lastLine(err.Error())
		}
		return ms
	}
	parts := strings.SplitN(string(out), "#####", 2)
	if len(parts) != 2 {
		ms.Err = "unexpected etcdctl output"
		return ms
	}
	var st endpointStatusJSON
	if err := json.Unmarshal([]byte(parts[0]), &st); err != nil || len(st) != 1 {
		ms.Err = fmt.Sprintf("endpoint status: %v", err)
		return ms
	}
	s := st[0].Status
	ms.MemberID, ms.ClusterID, ms.Revision = s.Header.MemberID, s.Header.ClusterID, s.Header.Revision
	ms.Leader, ms.RaftIndex, ms.Version = s.Leader, s.RaftIndex, s.Version
	var ml memberListJSON
	if err := json.Unmarshal([]byte(parts[1]), &ml); err != nil {
		ms.Err = fmt.Sprintf("member list: %v", err)
		return ms
	}
	ms.Members = len(ml.Members)
	for _, m := range ml.Members {
		if m.ID == ms.MemberID {
			ms.Name = m.Name
		}
		ms.MemberList = append(ms.MemberList, m.Name+"="+strings.Join(m.PeerURLs, ","))
	}
	sort.Strings(ms.MemberList)
	return ms
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	return s
}

// UnitStates returns systemctl is-active for every lab unit on the host.
func (l *Lab) UnitStates(ctx context.Context, h Host) (map[string]string, error) {
	units := h.Units()
	out, err := l.Exec(ctx, h.Address, "systemctl is-active "+strings.Join(units, " ")+" || true")
	if err != nil {
		return nil, err
	}
	lines := strings.Fields(string(out))
	if len(lines) != len(units) {
		return nil, fmt.Errorf("%s: systemctl is-active said %q", h.Address, out)
	}
	st := map[string]string{}
	for i, u := range units {
		st[u] = lines[i]
	}
	return st, nil
}
