package lab

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"
)

// Shaping the bastion's link: the lab's hosts share the machine's loopback
// device, where there is no link to saturate. Shape puts the traffic between
// the bastion (this machine's 127.0.0.1, the source address the kernel picks
// for loopback connections) and the hosts' sshd behind a link of the given
// rate (and round-trip delay), with tc on lo:
//
//	root htb qdisc (handle ee11:), no default class: unclassified packets
//	  (all other loopback traffic) pass through htb's direct queue, unshaped
//	  class ee11:3 rate R  <- u32: src 127.0.0.1, dst <block>.0/24, dport 22
//	  class ee11:4 rate R  <- u32: src <block>.0/24, sport 22, dst 127.0.0.1
//	  each class's queue: netem delay D/2 when a delay is asked, else pfifo
//
// Only SSH between the bastion and the lab's hosts is shaped: etcd's peer
// traffic (port 2380) and anything a host sends from its own address stay at
// loopback speed, as on a real network where the hosts sit together and the
// bastion is far away. A network namespace with a veth per lab would shape
// more faithfully but the lab's hosts share the machine's namespace by design
// (see the package doc); tc on lo needs nothing new. htb, not tbf or prio:
// it classifies and rate-limits in one qdisc and leaves unclassified traffic
// alone, and it is in kernels that lack prio and netem (this project's
// machine has htb, tbf and u32 but neither prio nor netem, so a delay is
// refused there with the reason).
//
// lo has one root qdisc, so one lab at a time is shaped; Shape refuses when
// another lab's shaping is in place, and Unshape (also run by `lab down`)
// removes it. tc comes with iproute2 (scripts/deps.sh installs it).

const shapeHandle = "ee11"

// ShapeSpec is a link: its rate in tc's notation ("1gbit", "100mbit") and
// its round-trip delay.
type ShapeSpec struct {
	Rate  string        `json:"rate"`
	Delay time.Duration `json:"delay"`
}

var rateRE = regexp.MustCompile(`^[0-9]+(\.[0-9]+)?(bit|kbit|mbit|gbit|tbit|bps|kbps|mbps|gbps)$`)

func shapeOwnerFile() string { return filepath.Join(RuntimeDir, "shape-owner") }

func tc(ctx context.Context, args ...string) (string, error) {
	out, err := exec.CommandContext(ctx, "tc", args...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("tc %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

// Shape puts the bastion's SSH traffic to and from the lab's hosts behind a
// link of spec's rate and delay (replacing this lab's earlier shaping).
func (l *Lab) Shape(ctx context.Context, spec ShapeSpec) error {
	if !rateRE.MatchString(spec.Rate) {
		return fmt.Errorf("rate %q: a tc rate such as 1gbit or 100mbit", spec.Rate)
	}
	if spec.Delay < 0 || spec.Delay > 10*time.Second {
		return fmt.Errorf("delay %v: 0 to 10s", spec.Delay)
	}
	if _, err := exec.LookPath("tc"); err != nil {
		return fmt.Errorf("tc not found: install iproute2 (scripts/deps.sh does)")
	}
	unlock, err := lockFile(ctx, filepath.Join(RuntimeDir, "shape.lock"))
	if err != nil {
		return err
	}
	defer unlock()
	owner, _ := os.ReadFile(shapeOwnerFile())
	root, err := tc(ctx, "qdisc", "show", "dev", "lo", "root")
	if err != nil {
		return err
	}
	ours := strings.Contains(root, "qdisc htb "+shapeHandle+":")
	switch {
	case ours && string(owner) != l.Opts.Name && string(owner) != "":
		return fmt.Errorf("lab %s shapes lo already: run `ezrestore lab unshape --name %s` first", owner, owner)
	case !ours && !strings.Contains(root, "noqueue") && strings.TrimSpace(root) != "":
		return fmt.Errorf("lo has a root qdisc that is not the lab's (%s): remove it first (tc qdisc del dev lo root)", strings.TrimSpace(root))
	}
	if ours {
		if _, err := tc(ctx, "qdisc", "del", "dev", "lo", "root"); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(RuntimeDir, 0o700); err != nil {
		return err
	}
	if err := os.WriteFile(shapeOwnerFile(), []byte(l.Opts.Name), 0o600); err != nil {
		return err
	}
	h := shapeHandle
	block := l.Block + ".0/24"
	leaf := []string{"pfifo", "limit", "10000"}
	if spec.Delay > 0 {
		leaf = []string{"netem", "delay", fmt.Sprintf("%dus", spec.Delay.Microseconds()/2), "limit", "100000"}
	}
	cmds := [][]string{
		{"qdisc", "add", "dev", "lo", "root", "handle", h + ":", "htb", "direct_qlen", "100000"},
		// A burst of 1 MiB: loopback packets are up to 64 KiB (GSO).
		{"class", "add", "dev", "lo", "parent", h + ":", "classid", h + ":3", "htb", "rate", spec.Rate, "ceil", spec.Rate, "burst", "1m", "cburst", "1m"},
		{"class", "add", "dev", "lo", "parent", h + ":", "classid", h + ":4", "htb", "rate", spec.Rate, "ceil", spec.Rate, "burst", "1m", "cburst", "1m"},
		append([]string{"qdisc", "add", "dev", "lo", "parent", h + ":3", "handle", "ee13:"}, leaf...),
		append([]string{"qdisc", "add", "dev", "lo", "parent", h + ":4", "handle", "ee14:"}, leaf...),
		{"filter", "add", "dev", "lo", "parent", h + ":", "protocol", "ip", "prio", "1", "u32",
			"match", "ip", "src", "127.0.0.1/32", "match", "ip", "dst", block, "match", "ip", "dport", "22", "0xffff", "flowid", h + ":3"},
		{"filter", "add", "dev", "lo", "parent", h + ":", "protocol", "ip", "prio", "2", "u32",
			"match", "ip", "src", block, "match", "ip", "sport", "22", "0xffff", "match", "ip", "dst", "127.0.0.1/32", "flowid", h + ":4"},
	}
	for _, c := range cmds {
		if out, err := tc(ctx, c...); err != nil {
			tc(context.Background(), "qdisc", "del", "dev", "lo", "root")
			os.Remove(shapeOwnerFile())
			if slices.Contains(c, "netem") && strings.Contains(out, "unknown") {
				return fmt.Errorf("%w\n(this kernel lacks the qdisc; a delay needs netem, CONFIG_NET_SCH_NETEM: shape with --delay 0)", err)
			}
			return err
		}
	}
	l.logf("%s: bastion <-> hosts SSH shaped to %s, %v round trip (tc on lo, %s)", l.Opts.Name, spec.Rate, spec.Delay, block)
	return nil
}

// Unshape removes this lab's shaping, if any; it is not an error when there
// is none.
func (l *Lab) Unshape(ctx context.Context) error {
	owner, err := os.ReadFile(shapeOwnerFile())
	if errors.Is(err, os.ErrNotExist) || string(owner) != l.Opts.Name {
		return nil
	}
	unlock, err := lockFile(ctx, filepath.Join(RuntimeDir, "shape.lock"))
	if err != nil {
		return err
	}
	defer unlock()
	root, err := tc(ctx, "qdisc", "show", "dev", "lo", "root")
	if err != nil {
		return err
	}
	if strings.Contains(root, "qdisc htb "+shapeHandle+":") {
		if _, err := tc(ctx, "qdisc", "del", "dev", "lo", "root"); err != nil {
			return err
		}
	}
	l.logf("%s: link shaping removed", l.Opts.Name)
	return os.Remove(shapeOwnerFile())
}

// ShapedBytes reads how many bytes crossed the shaped link towards the hosts
// (class ee11:3's counter), to check that traffic really went through it.
func ShapedBytes(ctx context.Context) (int64, error) {
	out, err := tc(ctx, "-s", "class", "show", "dev", "lo")
	if err != nil {
		return 0, err
	}
	lines := strings.Split(out, "\n")
	for i, ln := range lines {
		if strings.HasPrefix(ln, "class htb "+shapeHandle+":3 ") && i+1 < len(lines) {
			var n int64
			if _, err := fmt.Sscanf(strings.TrimSpace(lines[i+1]), "Sent %d bytes", &n); err == nil {
				return n, nil
			}
		}
	}
	return 0, fmt.Errorf("no shaped class on lo")
}
