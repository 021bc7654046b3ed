package etcdhost

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/ezrestore/ezrestore/internal/probecache"
	"github.com/ezrestore/ezrestore/inventory"
	"github.com/ezrestore/ezrestore/transport"
)

// EtcdFacts is what preflight learns about one etcd host, read-only.
type EtcdFacts struct {
	Host   string      `json:"host"`
	Config *EtcdConfig `json:"config"`
	Active string      `json:"active"`
	// BinDir is the inventory's bin_dir (kubeasz's default when unset),
	// where the tools are looked for first.
	BinDir string `json:"bin_dir"`
	// Etcdctl and Etcdutl are paths, empty when absent, with their versions.
	// *FromPath is true when the tool is not in BinDir and was found on PATH.
	Etcdctl         string `json:"etcdctl,omitempty"`
	EtcdctlVersion  string `json:"etcdctl_version,omitempty"`
	EtcdctlFromPath bool   `json:"etcdctl_from_path,omitempty"`
	Etcdutl         string `json:"etcdutl,omitempty"`
	EtcdutlVersion  string `json:"etcdutl_version,omitempty"`
	EtcdutlFromPath bool   `json:"etcdutl_from_path,omitempty"`
	// ServerVersion is what the unit's own binary says (`<binary> --version`);
	// ServerVersionOut is its output when no version could be read from it.
	ServerVersion    string `json:"server_version,omitempty"`
	ServerVersionOut string `json:"server_version_output,omitempty"`
	// Certs are the certificate files the unit names, read and parsed.
	Certs []*CertFile `json:"certs,omitempty"`
	// BumpRevision is true when the restore tool has --bump-revision.
	BumpRevision bool `json:"bump_revision"`
	// MemberDir tells whether <data-dir>/member exists now.
	MemberDir bool `json:"member_dir"`
	WalDir    bool `json:"wal_dir_exists"`
	// Layout is how the data, member, staging and WAL dirs are stored
	// (mount points, symlinks, owners; see layout.go); nil when it could
	// not be read.
	Layout []DirLayout `json:"layout,omitempty"`

	// Space is the free space and leftovers measured when the facts were
	// gathered (nil when it could not be read). It is as old as the facts: a
	// step that needs the state of the moment (after it changed something)
	// measures again with ProbeSpace.
	Space *HostSpace `json:"-"`
	// Leader is what the member said of itself and its leader while the
	// facts were gathered: nil when it was not asked (etcd not running, or
	// the caller did not ask: GatherMore.Leader).
	Leader *MemberStatus `json:"-"`
	// GatheredAt is when the facts were read (their last round trip; zero
	// when they were built, not read).
	GatheredAt time.Time `json:"-"`
}

// RestoreTool is the command line that restores a snapshot on this host:
// etcdutl where present; else etcdctl if it still has `snapshot restore` (before 3.6).
func (f *EtcdFacts) RestoreTool() (string, error) {
	if f.Etcdutl != "" {
		return transport.Quote(f.Etcdutl), nil
	}
	if f.Etcdctl == "" {
		return "", fmt.Errorf("neither etcdutl nor etcdctl was found in bin_dir or PATH")
	}
	if versionAtLeast(f.EtcdctlVersion, 3, 6) {
		return "", fmt.Errorf("etcdctl %s has no `snapshot restore` (removed in 3.6) and there is no etcdutl in bin_dir or PATH; install etcdutl %s beside it", f.EtcdctlVersion, f.EtcdctlVersion)
	}
	return "ETCDCTL_API=3 " + transport.Quote(f.Etcdctl), nil
}

// ToolLabel names the restore tool and version for the plan.
func (f *EtcdFacts) ToolLabel() string {
	if f.Etcdutl != "" {
		return "etcdutl " + f.EtcdutlVersion
	}
	return "etcdctl " + f.EtcdctlVersion
}

var versionRE = regexp.MustCompile(`version:\s*v?(\d+\.\d+\.\d+\S*)`)

// sections splits probe output into "@@name" sections.
func Sections(out string) map[string]string {
	m := map[string]string{}
	name := ""
	var b strings.Builder
	flush := func() {
		if name != "" {
			m[name] = strings.TrimRight(b.String(), "\n")
		}
		b.Reset()
	}
	for _, line := range strings.SplitAfter(out, "\n") {
		if strings.HasPrefix(line, "@@") {
			flush()
			name = strings.TrimSpace(line[2:])
			continue
		}
		b.WriteString(line)
	}
	flush()
	return m
}

// binDir is where kubeasz installs binaries on the nodes.
func binDir(h *inventory.Host) string {
	if v, ok := h.Var("bin_dir"); ok && v != "" {
		return v
	}
	return "/opt/kube/bin"
}

// findToolScript prints "@@<tool>" then the tool's path, where it was found
// ("from:bin_dir" or "from:path") and its version, preferring bin_dir: a
// fallback to PATH is never silent. The version comes from the probe cache
// when the file is the one it remembers (see probes).
func findToolScript(bin, tool string, pr *probes) string {
	p := transport.Quote(bin + "/" + tool)
	return fmt.Sprintf(`echo @@%[1]s; if [ -x %[2]s ]; then p=%[2]s; w=bin_dir; else p=$(command -v %[1]s 2>/dev/null || true); w=path; fi; if [ -n "$p" ]; then echo "$p"; echo "from:$w"; %[3]s; fi`,
		tool, p, pr.script(tool+" version", `ETCDCTL_API=3 "$p" version 2>&1 | head -n 2`))
}

// probes asks a host for what its tools print, through the probe cache:
// each probe's script reads the identity of the tool's file at "$p" first
// and starts the tool only when the cache does not know that file.
type probes struct {
	cache *probecache.Cache
	host  string
	// cached is what the cache held for each probe when its script was made.
	cached map[string]string
}

func newProbes(cache *probecache.Cache, h *inventory.Host) *probes {
	return &probes{cache: cache, host: fmt.Sprintf("%s:%d", h.Address, h.Port), cached: map[string]string{}}
}

// script prints "key:<path>|<identity>", then "cached:yes" when the cache
// knows that file, else cmd's output. The tool's path is in $p.
func (pr *probes) script(probe, cmd string) string {
	key, out, _ := pr.cache.Get(pr.host, probe)
	pr.cached[probe] = out
	// $k is never empty, so an empty key (nothing cached) never matches.
	return fmt.Sprintf(`k="$p|$(stat -L -c '%%s %%Y %%Z %%i %%d' -- "$p" 2>/dev/null)"; echo "key:$k"; if [ "$k" = %s ]; then echo cached:yes; else %s; fi`,
		transport.Quote(key), cmd)
}

// read turns a section that script wrote into what cmd would have printed
// (the lines before the key line are kept), and a remember func that puts a
// fresh answer in the cache: call it once the answer made sense.
func (pr *probes) read(probe, sec string) (string, func()) {
	nothing := func() {}
	head, rest, ok := strings.Cut(sec, "key:")
	if !ok {
		return sec, nothing
	}
	key, out, _ := strings.Cut(rest, "\n")
	if strings.TrimSpace(out) == "cached:yes" {
		return head + pr.cached[probe], nothing
	}
	_, identity, _ := strings.Cut(key, "|")
	if strings.TrimSpace(identity) == "" {
		return head + out, nothing
	}
	return head + out, func() { pr.cache.Put(pr.host, probe, key, out) }
}

// catScript prints "@@<name>" then the file's contents and a newline (a file
// without a final newline must not swallow the next marker), or, when it
// cannot be read, cat's message and "@@no<name>".
func catScript(name, path string) string {
	return fmt.Sprintf("echo @@%[1]s; if cat -- %[2]s 2>&1; then echo; else echo; echo @@no%[1]s; fi\n", name, transport.Quote(path))
}

// GatherEtcd reads, without changing anything, how etcd is installed and
// started on a host: the unit (with its environment and config files), the
// tools and their versions, free space and what the data dir holds. It takes
// two round trips, three when the unit points at files of its own.
func GatherEtcd(ctx context.Context, conn transport.Conn, h *inventory.Host) (*EtcdFacts, error) {
	return GatherEtcdWith(ctx, conn, h, GatherMore{})
}

// GatherMore is what a caller adds to GatherEtcd's round trips (the round
// trips are what a wide preflight waits on).
type GatherMore struct {
	// First is a script run in the first round trip; it prints "@@name"
	// sections of its own, and Check gets them before anything of the unit
	// is judged (with what the round trip wrote to stderr), so a host where
	// commands do not run as root is reported as that, not as an unreadable
	// unit.
	First string
	Check func(Sections map[string]string, stderr string) error
	// Leader asks a running member, in the last round trip, who leads
	// (`etcdctl endpoint status`); see EtcdFacts.LeaderStatus.
	Leader bool
	// Cache answers the version probes of tools that did not change since
	// it last saw them (nil: every tool is started).
	Cache *probecache.Cache
}

// GatherEtcdWith is GatherEtcd with more asked in the same round trips.
func GatherEtcdWith(ctx context.Context, conn transport.Conn, h *inventory.Host, more GatherMore) (*EtcdFacts, error) {
	bin := binDir(h)
	pr := newProbes(more.Cache, h)
	extra := []string{findToolScript(bin, "etcdutl", pr), findToolScript(bin, "etcdctl", pr)}
	if more.First != "" {
		extra = append([]string{more.First}, extra...)
	}
	cfg, s, err := readEtcdConfig(ctx, conn, more.Check, extra...)
	if err != nil {
		return nil, err
	}
	f := &EtcdFacts{Host: h.Name, BinDir: bin, Config: cfg, Active: strings.TrimSpace(s["active"])}
	utl, rememberUtl := pr.read("etcdutl version", s["etcdutl"])
	ctl, rememberCtl := pr.read("etcdctl version", s["etcdctl"])
	f.Etcdutl, f.EtcdutlVersion, f.EtcdutlFromPath = toolLines(utl)
	f.Etcdctl, f.EtcdctlVersion, f.EtcdctlFromPath = toolLines(ctl)
	if f.EtcdutlVersion != "" {
		rememberUtl()
	}
	if f.EtcdctlVersion != "" {
		rememberCtl()
	}

	// Last round: the data dir's state, what the restore tool can do, the
	// server's own version and the certificate files (never the keys).
	c := f.Config
	var b3 strings.Builder
	fmt.Fprintf(&b3, "echo @@member; [ -d %s ] && echo yes || echo no\n", transport.Quote(c.DataDir+"/member"))
	if c.WalDir != "" {
		fmt.Fprintf(&b3, "echo @@wal; [ -d %s ] && echo yes || echo no\n", transport.Quote(c.WalDir))
	}
	certs := c.CertFiles()
	b3.WriteString(certScript(certs))
	// Free space and earlier runs' leftovers, in a subshell of its own (its
	// helper functions stay there); it prints no "@@" lines of its own.
	fmt.Fprintf(&b3, "echo @@space\n(\n%s)\n", SpaceScript(f, false))
	fmt.Fprintf(&b3, "echo @@layout\n(\n%s)\n", LayoutScript(f))
	// The etcd binaries each take tens of milliseconds to start: they run
	// beside each other and beside the reads above.
	parts := []string{b3.String(), fmt.Sprintf("echo @@server; p=%s; %s", transport.Quote(c.Binary),
		pr.script("etcd --version", `"$p" --version 2>&1 | head -n 3`))}
	if f.Etcdutl != "" {
		parts = append(parts, fmt.Sprintf("echo @@bump; p=%s; %s", transport.Quote(f.Etcdutl),
			pr.script("etcdutl bump-revision", `"$p" snapshot restore --help 2>&1 | grep -c -- --bump-revision || true`)))
	}
	askLeader := more.Leader && f.Active == "active" && f.Etcdctl != ""
	if askLeader {
		// stdout only: etcdctl 3.6 logs a warning about ETCDCTL_API on stderr.
		parts = append(parts, fmt.Sprintf("echo @@leader\nif out=$(%s 2>/dev/null); then printf '%%s\\n' \"$out\"; else echo \"etcdctl exited $?\"; echo @@noleader; fi", LeaderStatusCommand(ClientFor(f))))
	}
	res, err := conn.Run(ctx, concurrently(parts...))
	if err != nil {
		return nil, err
	}
	f.GatheredAt = time.Now()
	s3 := Sections(string(res.Stdout))
	// Kept for preflight and the space step of the same plan; a reading
	// that cannot be parsed is measured again by whoever needs it.
	if hs, err := ParseSpace(s3["space"], f); err == nil {
		f.Space = hs
	}
	if askLeader {
		ms := MemberStatus{Host: h.Name, Endpoint: ClientFor(f).Endpoint}
		if _, failed := s3["noleader"]; failed {
			ms.Error = "etcdctl endpoint status: " + strings.TrimSpace(s3["leader"])
		} else {
			ParseLeaderStatus([]byte(s3["leader"]), &ms)
		}
		f.Leader = &ms
	}
	server, rememberServer := pr.read("etcd --version", s3["server"])
	f.ServerVersion = serverVersion(server)
	if f.ServerVersion == "" {
		f.ServerVersionOut = strings.TrimSpace(server)
	} else {
		rememberServer()
	}
	if ls, err := ParseLayout(s3["layout"], f); err == nil {
		f.Layout = ls
	}
	readCerts(certs, s3)
	f.Certs = certs
	f.MemberDir = strings.TrimSpace(s3["member"]) == "yes"
	f.WalDir = strings.TrimSpace(s3["wal"]) == "yes"
	bump, rememberBump := pr.read("etcdutl bump-revision", s3["bump"])
	bump = strings.TrimSpace(bump)
	f.BumpRevision = bump != "" && bump != "0"
	if _, err := strconv.Atoi(bump); err == nil {
		rememberBump()
	}
	return f, nil
}

// toolLines reads a findToolScript section: path, where it was found, version.
func toolLines(sec string) (path, version string, fromPath bool) {
	lines := strings.Split(strings.TrimSpace(sec), "\n")
	if len(lines) == 0 || lines[0] == "" {
		return "", "", false
	}
	path = strings.TrimSpace(lines[0])
	for _, l := range lines[1:] {
		l = strings.TrimSpace(l)
		if l == "from:path" {
			fromPath = true
			continue
		}
		if m := versionRE.FindStringSubmatch(l); m != nil && version == "" {
			version = m[1]
		}
	}
	return path, version, fromPath
}

// concurrently is a script that runs independent probe scripts at once on
// the host and prints their outputs one after the other, in order. A probe
// is mostly the start of a tool (etcd's binaries take 15-35 ms each just to
// print their version): on a host with cores to spare the round trip takes
// as long as the slowest probe, not their sum. Each probe's stdout waits in
// a private temp dir; when no temp dir can be made they run one by one.
func concurrently(parts ...string) string {
	if len(parts) < 2 {
		return strings.Join(parts, "\n")
	}
	var par, seq strings.Builder
	for i, p := range parts {
		fmt.Fprintf(&par, "(\n%s\n) > \"$zd/%d\" &\n", p, i)
		fmt.Fprintf(&seq, "(\n%s\n)\n", p)
	}
	par.WriteString("wait\n")
	for i := range parts {
		fmt.Fprintf(&par, "cat -- \"$zd/%d\"\n", i)
	}
	par.WriteString("rm -rf -- \"$zd\"\n")
	return "if zd=$(mktemp -d 2>/dev/null); then\n" + par.String() + "else\n" + seq.String() + "fi"
}

// readEtcdConfig reads the etcd unit and the files it points at (two round
// trips) and works out how it starts etcd. extra scripts run in the first
// round; their sections are returned with the unit's and "active".
// check, when set, judges the sections first.
func readEtcdConfig(ctx context.Context, conn transport.Conn, check func(map[string]string, string) error, extra ...string) (*EtcdConfig, map[string]string, error) {
	script := concurrently(append([]string{
		"echo @@unit; systemctl cat etcd.service 2>&1 || echo @@nounit\necho @@active; systemctl is-active etcd.service 2>/dev/null || true",
	}, extra...)...)
	res, err := conn.Run(ctx, script)
	if err != nil {
		return nil, nil, err
	}
	s := Sections(string(res.Stdout))
	if check != nil {
		if err := check(s, strings.TrimSpace(string(res.Stderr))); err != nil {
			return nil, nil, err
		}
	}
	if _, missing := s["nounit"]; missing {
		return nil, nil, fmt.Errorf("no etcd.service unit: %s", strings.TrimSpace(s["unit"]))
	}
	unit, err := ParseUnit(s["unit"])
	if err != nil {
		return nil, nil, fmt.Errorf("etcd.service: %w", err)
	}
	// The files the unit points at, when it has any: the dirs depend on them.
	needed := unit.NeededFiles()
	files := map[string]string{}
	if len(needed) > 0 {
		var b strings.Builder
		for i, path := range needed {
			b.WriteString(catScript(fmt.Sprintf("file%d", i), path))
		}
		if res, err = conn.Run(ctx, b.String()); err != nil {
			return nil, nil, err
		}
		s2 := Sections(string(res.Stdout))
		for i, path := range needed {
			if _, missing := s2[fmt.Sprintf("nofile%d", i)]; !missing {
				files[path] = s2[fmt.Sprintf("file%d", i)]
			}
		}
	}
	cfg, err := ResolveEtcd(unit, files)
	if err != nil {
		return nil, nil, fmt.Errorf("etcd.service: %w", err)
	}
	return cfg, s, nil
}
