package transport

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/ezrestore/ezrestore/inventory"
)

// Route is how one host is reached, resolved once in the order Ansible and
// OpenSSH use: the inventory's connection variables (Ansible puts them first
// on ssh's command line: ansible_port, ansible_ssh_private_key_file,
// ansible_user), then ansible_ssh_common_args and ansible_ssh_extra_args,
// then ~/.ssh/config (the first value obtained wins, IdentityFile adds up),
// then defaults. Every value says where it came from.
type Route struct {
	// Host is the inventory name; empty for a jump host.
	Host string `json:"host,omitempty" yaml:"host,omitempty"`
	// Alias is the name looked up in ssh_config: ansible_host (else the
	// inventory name), or a jump host as ProxyJump names it.
	Alias string `json:"alias" yaml:"alias"`
	// Address is what is connected to (ssh_config's HostName, else Alias);
	// known_hosts records the host under Address:Port.
	Address Sourced[string] `json:"address" yaml:"address"`
	Port    Sourced[int]    `json:"port" yaml:"port"`
	User    Sourced[string] `json:"user" yaml:"user"`
	// Jumps are the ProxyJump hops, first hop first, each resolved as a
	// route of its own; the host is reached through the last one.
	Jumps    []*Route `json:"jumps,omitempty" yaml:"jumps,omitempty"`
	JumpFrom string   `json:"jump_from,omitempty" yaml:"jump_from,omitempty"`
	// ProxyCommand is run through sh -c with %h %p %r %n substituted; its
	// stdin and stdout are the connection. Never set together with Jumps.
	ProxyCommand Sourced[string] `json:"proxy_command,omitempty" yaml:"proxy_command,omitempty"`
	// Keys are the key files to offer, in order; Agent is the agent socket
	// whose keys are offered after them ("" for none).
	Keys           []Sourced[string] `json:"keys" yaml:"keys"`
	Agent          Sourced[string]   `json:"agent" yaml:"agent"`
	IdentitiesOnly Sourced[bool]     `json:"identities_only" yaml:"identities_only"`
	// KnownHosts are the known_hosts files checked; a new key (with
	// accept-new) is recorded in the first.
	KnownHosts []Sourced[string] `json:"known_hosts" yaml:"known_hosts"`
	// StrictHostKeyChecking is "yes" (an unknown host is refused) or
	// "accept-new" (it is recorded). A changed key is always refused.
	StrictHostKeyChecking Sourced[string] `json:"strict_host_key_checking" yaml:"strict_host_key_checking"`
	// Become is who commands run as: the login user itself, or
	// sudo to BecomeUser.
	Become Sourced[string] `json:"become" yaml:"become"`
	// ConnectTimeout bounds TCP connect plus handshake, per hop.
	ConnectTimeout time.Duration `json:"-" yaml:"-"`
	// Ignored are options read and deliberately not used, each with why.
	Ignored []string `json:"ignored,omitempty" yaml:"ignored,omitempty"`
	// Warnings are options that would change how the host is reached and
	// that ezrestore does not follow.
	Warnings []Warning `json:"warnings,omitempty" yaml:"warnings,omitempty"`

	// required are the key files the inventory or the command line name:
	// they must be readable (ssh_config's and default ones may be absent).
	required map[string]bool
}

func (r *Route) optionalKey(k Sourced[string]) bool { return !r.required[k.Value] }

// Sourced is a value with where it came from: "ansible_port (hosts:12)",
// "ansible_ssh_common_args -o ProxyJump (hosts:20)", "/root/.ssh/config:4",
// "--private-key", "default".
type Sourced[T any] struct {
	Value T      `json:"value" yaml:"value"`
	From  string `json:"from" yaml:"from"`
}

// Warning is an SSH setting ezrestore does not follow, named with where it
// was set.
type Warning struct {
	Host    string `json:"host,omitempty" yaml:"host,omitempty"`
	Option  string `json:"option" yaml:"option"`
	From    string `json:"from" yaml:"from"`
	Message string `json:"message" yaml:"message"`
}

func (w Warning) String() string {
	s := fmt.Sprintf("%s: %s: %s", w.From, w.Option, w.Message)
	if w.Host != "" {
		s = "host " + w.Host + ": " + s
	}
	return s
}

// FromDefault marks a value nothing set.
const FromDefault = "default"

// hostPort is Address:Port as dialled and as known_hosts records it.
func (r *Route) hostPort() string {
	return net.JoinHostPort(r.Address.Value, strconv.Itoa(r.Port.Value))
}

// Target is user@address:port.
func (r *Route) Target() string { return r.User.Value + "@" + r.hostPort() }

// Via names the jump hosts or the proxy command, "" when the host is dialled directly.
func (r *Route) Via() string {
	switch {
	case len(r.Jumps) > 0:
		var hops []string
		for _, j := range r.Jumps {
			hops = append(hops, j.Target())
		}
		return "via " + strings.Join(hops, " -> ")
	case r.ProxyCommand.Value != "":
		return "via ProxyCommand " + strconv.Quote(r.ProxyCommand.Value)
	}
	return ""
}

// String is the route for a person, one setting a line with its source.
func (r *Route) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s", r.Target())
	if v := r.Via(); v != "" {
		fmt.Fprintf(&b, " %s", v)
	}
	line := func(name, value, from string) { fmt.Fprintf(&b, "\n  %-17s %s  [%s]", name, value, from) }
	line("address", r.Address.Value, r.Address.From)
	line("port", strconv.Itoa(r.Port.Value), r.Port.From)
	line("user", r.User.Value, r.User.From)
	line("become", r.Become.Value, r.Become.From)
	for i, j := range r.Jumps {
		line(fmt.Sprintf("jump %d", i+1), j.Target(), r.JumpFrom+"; "+j.Address.From)
	}
	if r.ProxyCommand.Value != "" {
		line("proxy command", r.ProxyCommand.Value, r.ProxyCommand.From)
	}
	for _, k := range r.Keys {
		line("key", k.Value, k.From)
	}
	agent := r.Agent.Value
	if agent == "" {
		agent = "(none)"
	}
	line("agent", agent, r.Agent.From)
	if r.IdentitiesOnly.Value {
		line("identities only", "yes", r.IdentitiesOnly.From)
	}
	for _, k := range r.KnownHosts {
		line("known_hosts", k.Value, k.From)
	}
	line("host key check", r.StrictHostKeyChecking.Value, r.StrictHostKeyChecking.From)
	for _, s := range r.Ignored {
		fmt.Fprintf(&b, "\n  ignored           %s", s)
	}
	for _, w := range r.Warnings {
		fmt.Fprintf(&b, "\n  WARNING           %s", w)
	}
	return b.String()
}

// settings collects the first value obtained for each option, as OpenSSH
// does, from the sources in the order they are fed.
type settings struct {
	vals    map[string]Sourced[string] // by lower-case option name
	seq     map[string]int             // when each of vals was set
	cmdline map[string]bool            // vals set on the command line (not ssh_config)
	idents  []Sourced[string]          // IdentityFile adds up
	known   []Sourced[string]          // UserKnownHostsFile and GlobalKnownHostsFile, every source
	// cmdIdents and cmdKnown are those set on the command line (the
	// inventory's arguments): jump hosts are dialled with them too.
	cmdIdents, cmdKnown []Sourced[string]
	// leadIdents is how many of idents come before the caller's keys (the
	// inventory's own key).
	leadIdents int
	ignored    []string
	warns      []Warning
	host       string
}

func newSettings(host string) *settings {
	return &settings{vals: map[string]Sourced[string]{}, seq: map[string]int{}, cmdline: map[string]bool{}, host: host}
}

func (s *settings) warn(option, from, format string, args ...any) {
	s.warns = append(s.warns, Warning{Host: s.host, Option: option, From: from, Message: fmt.Sprintf(format, args...)})
}

// harmless are options that do not change where or as whom ezrestore
// connects, nor how it trusts a host; they are listed as ignored.
var harmless = map[string]string{
	"controlmaster":                   "ezrestore keeps one connection per host itself",
	"controlpath":                     "ezrestore keeps one connection per host itself",
	"controlpersist":                  "ezrestore keeps one connection per host itself",
	"serveraliveinterval":             "ezrestore sends its own keepalives",
	"serveralivecountmax":             "ezrestore sends its own keepalives",
	"tcpkeepalive":                    "ezrestore sends its own keepalives",
	"compression":                     "not needed on the links ezrestore uses",
	"batchmode":                       "ezrestore never prompts",
	"loglevel":                        "no effect on the connection",
	"passwordauthentication":          "ezrestore authenticates with keys only",
	"kbdinteractiveauthentication":    "ezrestore authenticates with keys only",
	"challengeresponseauthentication": "ezrestore authenticates with keys only",
	"preferredauthentications":        "ezrestore authenticates with keys only",
	"gssapiauthentication":            "ezrestore authenticates with keys only",
	"gssapidelegatecredentials":       "ezrestore authenticates with keys only",
	"pubkeyauthentication":            "ezrestore always authenticates with keys",
	"numberofpasswordprompts":         "ezrestore never prompts",
	"forwardagent":                    "ezrestore forwards nothing",
	"forwardx11":                      "ezrestore forwards nothing",
	"forwardx11trusted":               "ezrestore forwards nothing",
	"addkeystoagent":                  "ezrestore does not change the agent",
	"usekeychain":                     "ezrestore does not change the agent",
	"hashknownhosts":                  "ezrestore records hosts in plain text, as ssh-keyscan does",
	"checkhostip":                     "ezrestore checks the key of the address it dials",
	"visualhostkey":                   "no effect on the connection",
	"updatehostkeys":                  "ezrestore never changes a recorded key",
	"sendenv":                         "ezrestore sets no environment on the host",
	"setenv":                          "ezrestore sets no environment on the host",
	"requesttty":                      "ezrestore runs commands without a terminal",
	"escapechar":                      "no effect on the connection",
	"connectionattempts":              "ezrestore reports a failed connection at once",
	"ipqos":                           "no effect on the connection",
	"addressfamily":                   "the address decides the family",
	"ciphers":                         "ezrestore uses its SSH library's algorithms",
	"macs":                            "ezrestore uses its SSH library's algorithms",
	"kexalgorithms":                   "ezrestore uses its SSH library's algorithms",
	"hostkeyalgorithms":               "ezrestore asks for the key types known_hosts records",
	"pubkeyacceptedkeytypes":          "ezrestore uses its SSH library's algorithms",
	"pubkeyacceptedalgorithms":        "ezrestore uses its SSH library's algorithms",
	"hostbasedauthentication":         "ezrestore authenticates with keys only",
	"hostbasedkeytypes":               "ezrestore authenticates with keys only",
}

// supported are the options ezrestore follows.
var supported = map[string]string{
	"hostname": "HostName", "port": "Port", "user": "User", "identityfile": "IdentityFile",
	"identitiesonly": "IdentitiesOnly", "proxyjump": "ProxyJump", "proxycommand": "ProxyCommand",
	"userknownhostsfile": "UserKnownHostsFile", "globalknownhostsfile": "GlobalKnownHostsFile",
	"stricthostkeychecking": "StrictHostKeyChecking", "connecttimeout": "ConnectTimeout",
	"identityagent": "IdentityAgent",
}

// set records option = value from a source unless an earlier source set it.
func (s *settings) set(option, value, from string) { s.setFrom(option, value, from, true) }

func (s *settings) setFrom(option, value, from string, cmdline bool) {
	key := strings.ToLower(option)
	switch key {
	case "identityfile":
		s.idents = append(s.idents, Sourced[string]{Value: value, From: from})
		if cmdline {
			s.cmdIdents = append(s.cmdIdents, Sourced[string]{Value: value, From: from})
		}
		return
	case "userknownhostsfile", "globalknownhostsfile":
		for _, f := range strings.Fields(value) {
			k := Sourced[string]{Value: f, From: from + " " + supported[key]}
			s.known = append(s.known, k)
			if cmdline {
				s.cmdKnown = append(s.cmdKnown, k)
			}
		}
		return
	}
	if _, ok := supported[key]; ok {
		if _, done := s.vals[key]; !done {
			s.vals[key] = Sourced[string]{Value: value, From: from}
			s.seq[key] = len(s.seq)
			s.cmdline[key] = cmdline
		}
		return
	}
	if why, ok := harmless[key]; ok {
		s.ignored = append(s.ignored, fmt.Sprintf("%s %s (%s): %s", option, value, from, why))
		return
	}
	s.warn(option, from, "not supported by ezrestore, not followed (value %q)", value)
}

func (s *settings) get(option string) (Sourced[string], bool) {
	v, ok := s.vals[strings.ToLower(option)]
	return v, ok
}

// parseArgs reads ssh command-line arguments as Ansible passes them in
// ansible_ssh_common_args and ansible_ssh_extra_args.
func (s *settings) parseArgs(args, from string) (configFile string) {
	words, err := splitShell(args)
	if err != nil {
		s.warn(args, from, "cannot split into arguments (%v); not followed", err)
		return ""
	}
	for i := 0; i < len(words); i++ {
		w := words[i]
		if !strings.HasPrefix(w, "-") || w == "-" {
			s.warn(w, from, "unexpected argument, not followed")
			continue
		}
		flag, rest := w[:2], w[2:]
		arg := func() (string, bool) {
			if rest != "" {
				return rest, true
			}
			if i+1 < len(words) {
				i++
				return words[i], true
			}
			s.warn(flag, from, "needs a value; not followed")
			return "", false
		}
		src := from
		switch flag {
		case "-o":
			v, ok := arg()
			if !ok {
				continue
			}
			k, val := splitOption(v)
			if k == "" {
				s.warn("-o "+v, from, "not an option of the form Key=Value; not followed")
				continue
			}
			s.set(k, val, src+" -o "+k)
		case "-J":
			if v, ok := arg(); ok {
				s.set("ProxyJump", v, src+" -J")
			}
		case "-i":
			if v, ok := arg(); ok {
				s.set("IdentityFile", v, src+" -i")
			}
		case "-p":
			if v, ok := arg(); ok {
				s.set("Port", v, src+" -p")
			}
		case "-l":
			if v, ok := arg(); ok {
				s.set("User", v, src+" -l")
			}
		case "-F":
			if v, ok := arg(); ok {
				configFile = v
			}
		case "-C", "-q", "-v", "-T", "-t", "-x", "-a", "-n":
			// No effect on where, as whom, or how the host is trusted.
			if rest != "" && strings.Trim(rest, "v") != "" && flag == "-v" {
				s.warn(w, from, "unknown flags, not followed")
			}
		case "-b", "-c", "-D", "-E", "-e", "-I", "-L", "-m", "-O", "-Q", "-R", "-S", "-W", "-w", "-B":
			v, _ := arg()
			s.warn(flag+" "+v, from, "not supported by ezrestore, not followed")
		default:
			s.warn(w, from, "not supported by ezrestore, not followed")
		}
	}
	return configFile
}

// splitOption splits "Key=Value", "Key Value" or "Key = Value".
func splitOption(s string) (string, string) {
	s = strings.TrimSpace(s)
	i := strings.IndexAny(s, "= \t")
	if i <= 0 {
		return "", ""
	}
	k, v := s[:i], strings.TrimSpace(s[i:])
	v = strings.TrimSpace(strings.TrimPrefix(v, "="))
	v = strings.Trim(v, `"`)
	if v == "" {
		return "", ""
	}
	return k, v
}

// splitShell splits a command line as Python's shlex.split (which Ansible
// uses on these variables) does: quotes group, backslash escapes.
func splitShell(s string) ([]string, error) {
	var words []string
	var cur strings.Builder
	inWord := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\'':
			j := strings.IndexByte(s[i+1:], '\'')
			if j < 0 {
				return nil, fmt.Errorf("no closing quote")
			}
			cur.WriteString(s[i+1 : i+1+j])
			i += j + 1
			inWord = true
		case c == '"':
			i++
			for ; i < len(s) && s[i] != '"'; i++ {
				if s[i] == '\\' && i+1 < len(s) && strings.IndexByte(`"\$`+"`", s[i+1]) >= 0 {
					i++
				}
				cur.WriteByte(s[i])
			}
			if i >= len(s) {
				return nil, fmt.Errorf("no closing quote")
			}
			inWord = true
		case c == '\\' && i+1 < len(s):
			i++
			cur.WriteByte(s[i])
			inWord = true
		case c == ' ' || c == '\t' || c == '\n':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteByte(c)
			inWord = true
		}
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words, nil
}

// varFrom names an inventory variable with where it was set.
func varFrom(h *inventory.Host, name string) string {
	if p, ok := h.VarPos[name]; ok && p.File != "" {
		return name + " (" + p.String() + ")"
	}
	return name
}

// hostVar reports whether the first set of names is set for h, with its value.
func hostVar(h *inventory.Host, names ...string) (string, string, bool) {
	for _, n := range names {
		if v, ok := h.Vars[n]; ok {
			return n, v, true
		}
	}
	return "", "", false
}

// Resolve works out how h is reached with opts: address, port, user, jump
// hosts or proxy command, keys, known_hosts files and host-key policy, each
// with where it came from. The warnings name every option that is not
// followed; they are also in the Route.
func Resolve(h *inventory.Host, opts Options) (*Route, []Warning) {
	opts = withDefaults(opts)
	s := newSettings(h.Name)
	// Ansible's own options come first on ssh's command line.
	explicit := h.Vars == nil // a host built in code: its fields are explicit
	if n, _, ok := hostVar(h, "ansible_port", "ansible_ssh_port"); ok || (explicit && h.Port != 0) {
		s.set("Port", strconv.Itoa(h.Port), fromVar(h, n))
	}
	if n, _, ok := hostVar(h, "ansible_ssh_private_key_file", "ansible_private_key_file"); ok || (explicit && h.KeyFile != "") {
		if h.KeyFile != "" {
			s.set("IdentityFile", h.KeyFile, fromVar(h, n))
			s.leadIdents = 1
		}
	}
	if n, _, ok := hostVar(h, "ansible_user", "ansible_ssh_user"); ok || (explicit && h.User != "") {
		s.set("User", h.User, fromVar(h, n))
	}
	for _, name := range []string{"ansible_password", "ansible_ssh_pass", "ansible_ssh_password"} {
		if _, ok := h.Vars[name]; ok {
			s.warn(name, varFrom(h, name), "ezrestore logs in with keys only; the password is not used")
		}
	}
	for _, name := range []string{"ansible_become_password", "ansible_become_pass", "ansible_sudo_pass"} {
		if _, ok := h.Vars[name]; ok {
			s.warn(name, varFrom(h, name), "ezrestore needs sudo without a password (NOPASSWD); the password is not used")
		}
	}
	if v, ok := h.Vars["ansible_become_method"]; ok && v != "sudo" {
		s.warn("ansible_become_method", varFrom(h, "ansible_become_method"), "%q is not supported: ezrestore becomes root with sudo -n", v)
	}
	var configFile string
	for _, name := range []string{"ansible_ssh_common_args", "ansible_ssh_extra_args"} {
		if v, ok := h.Vars[name]; ok && strings.TrimSpace(v) != "" {
			if f := s.parseArgs(v, varFrom(h, name)); f != "" && configFile == "" {
				configFile = f
			}
		}
	}
	if opts.SSHConfigFile != "" && configFile == "" {
		configFile = opts.SSHConfigFile
	}
	alias := h.Address
	if alias == "" {
		alias = h.Name
	}
	cfg := loadSSHConfig(configFile, s)
	r := build(alias, s, cfg, opts, 0)
	r.Host = h.Name
	r.Become = becomeOf(h, r.User.Value)
	return r, r.allWarnings()
}

func fromVar(h *inventory.Host, name string) string {
	if name == "" {
		return "inventory host " + h.Name
	}
	return varFrom(h, name)
}

// allWarnings are the route's warnings and its jump hosts'.
func (r *Route) allWarnings() []Warning {
	out := append([]Warning{}, r.Warnings...)
	for _, j := range r.Jumps {
		out = append(out, j.Warnings...)
	}
	return out
}

func becomeOf(h *inventory.Host, login string) Sourced[string] {
	target := "root"
	if h.Become && h.BecomeUser != "" {
		target = h.BecomeUser
	}
	from := FromDefault
	if n, _, ok := hostVar(h, "ansible_become_user"); ok && h.Become {
		from = varFrom(h, n)
	} else if n, _, ok := hostVar(h, "ansible_become"); ok {
		from = varFrom(h, n)
	}
	if login == target {
		return Sourced[string]{Value: "none: logs in as " + target, From: from}
	}
	return Sourced[string]{Value: "sudo -n to " + target, From: from}
}

// maxJumpDepth bounds ProxyJump chains (a jump host whose config names
// another jump host, and so on).
const maxJumpDepth = 8

// build finishes a route for alias from the options set so far, then
// ssh_config, then defaults.
func build(alias string, s *settings, cfg *sshConfig, opts Options, depth int) *Route {
	cfg.apply(alias, s)
	r := &Route{Alias: alias, ConnectTimeout: opts.ConnectTimeout}
	r.Address = Sourced[string]{Value: alias, From: FromDefault}
	if v, ok := s.get("HostName"); ok {
		r.Address = Sourced[string]{Value: expandTokens(v.Value, alias, nil), From: v.From}
	}
	r.Port = Sourced[int]{Value: 22, From: FromDefault}
	if v, ok := s.get("Port"); ok {
		if p, err := strconv.Atoi(v.Value); err == nil && p > 0 && p < 65536 {
			r.Port = Sourced[int]{Value: p, From: v.From}
		} else {
			s.warn("Port", v.From, "%q is not a port number; using 22", v.Value)
		}
	}
	r.User = Sourced[string]{Value: "root", From: FromDefault}
	if v, ok := s.get("User"); ok {
		r.User = Sourced[string]{Value: v.Value, From: v.From}
	}
	if v, ok := s.get("ConnectTimeout"); ok {
		if sec, err := strconv.Atoi(v.Value); err == nil && sec > 0 {
			r.ConnectTimeout = time.Duration(sec) * time.Second
		}
	}

	// Keys, then ~/.ssh/id_* and the agent.
	seenKey := map[string]bool{}
	addKey := func(path, from string) {
		if !seenKey[path] {
			seenKey[path] = true
			r.Keys = append(r.Keys, Sourced[string]{Value: path, From: from})
		}
	}
	r.required = map[string]bool{}
	for _, k := range s.cmdIdents {
		r.required[expandHome(expandTokens(k.Value, alias, r))] = true
	}
	// The inventory's key, then the caller's (--private-key, the cluster
	// dir's), then the ssh arguments' and ssh_config's.
	for _, k := range s.idents[:s.leadIdents] {
		addKey(expandHome(k.Value), k.From)
	}
	for _, k := range opts.IdentityFiles {
		r.required[expandHome(k)] = true
		addKey(expandHome(k), sourceOr(opts.Sources, k, "--private-key"))
	}
	for _, k := range s.idents[s.leadIdents:] {
		addKey(expandHome(expandTokens(k.Value, alias, r)), k.From)
	}
	r.IdentitiesOnly = Sourced[bool]{From: FromDefault}
	if v, ok := s.get("IdentitiesOnly"); ok {
		r.IdentitiesOnly = Sourced[bool]{Value: yes(v.Value), From: v.From}
	}
	if home, err := os.UserHomeDir(); err == nil && !(r.IdentitiesOnly.Value && len(r.Keys) > 0) {
		for _, n := range defaultKeyNames {
			if p := filepath.Join(home, ".ssh", n); fileExists(p) {
				addKey(p, FromDefault)
			}
		}
	}
	r.Agent = Sourced[string]{From: "$SSH_AUTH_SOCK"}
	if sock := os.Getenv("SSH_AUTH_SOCK"); sock != "" {
		r.Agent.Value = sock
	}
	if v, ok := s.get("IdentityAgent"); ok {
		switch {
		case strings.EqualFold(v.Value, "none"):
			r.Agent = Sourced[string]{From: v.From}
		case v.Value == "SSH_AUTH_SOCK" || v.Value == "$SSH_AUTH_SOCK":
			r.Agent.From = v.From
		default:
			r.Agent = Sourced[string]{Value: expandHome(v.Value), From: v.From}
		}
	}
	if opts.NoAgent {
		r.Agent = Sourced[string]{From: "agent turned off"}
	}

	// known_hosts: the files named (command line, then ssh_config), then
	// the caller's (the cluster dir's, ~/.ssh/known_hosts), then the global one.
	seenKH := map[string]bool{}
	addKH := func(path, from string) {
		if path == "/dev/null" {
			s.warn("UserKnownHostsFile", from, "/dev/null would trust any host; ezrestore checks host keys against the other known_hosts files")
			return
		}
		if !seenKH[path] {
			seenKH[path] = true
			r.KnownHosts = append(r.KnownHosts, Sourced[string]{Value: path, From: from})
		}
	}
	var global []Sourced[string]
	for _, k := range s.known {
		if strings.Contains(k.From, "GlobalKnownHostsFile") {
			global = append(global, k)
			continue
		}
		addKH(expandHome(expandTokens(k.Value, alias, r)), k.From)
	}
	for _, k := range opts.KnownHostsFiles {
		addKH(k, sourceOr(opts.Sources, k, "default"))
	}
	for _, k := range global {
		addKH(expandHome(k.Value), k.From)
	}
	if len(global) == 0 && fileExists("/etc/ssh/ssh_known_hosts") {
		addKH("/etc/ssh/ssh_known_hosts", FromDefault)
	}

	r.StrictHostKeyChecking = Sourced[string]{Value: "yes", From: FromDefault}
	if v, ok := s.get("StrictHostKeyChecking"); ok {
		switch strings.ToLower(v.Value) {
		case "yes", "ask", "true":
			r.StrictHostKeyChecking = Sourced[string]{Value: "yes", From: v.From}
		case "accept-new":
			r.StrictHostKeyChecking = Sourced[string]{Value: "accept-new", From: v.From}
		case "no", "off", "false":
			r.StrictHostKeyChecking = Sourced[string]{Value: "accept-new", From: v.From}
			s.warn("StrictHostKeyChecking", v.From, "%q would trust any key, even a changed one; ezrestore records unknown hosts (as accept-new) and refuses changed keys", v.Value)
		default:
			s.warn("StrictHostKeyChecking", v.From, "unknown value %q; using yes", v.Value)
		}
	}
	if opts.AcceptNewHostKeys {
		r.StrictHostKeyChecking = Sourced[string]{Value: "accept-new", From: "--accept-new-host-keys"}
	}

	// ProxyJump or ProxyCommand: the first one set wins, "none" means none.
	jump, hasJump := s.get("ProxyJump")
	pcmd, hasCmd := s.get("ProxyCommand")
	if hasJump && hasCmd {
		if s.order("ProxyJump") < s.order("ProxyCommand") {
			s.ignored = append(s.ignored, fmt.Sprintf("ProxyCommand (%s): ProxyJump was set first", pcmd.From))
			hasCmd = false
		} else {
			s.ignored = append(s.ignored, fmt.Sprintf("ProxyJump (%s): ProxyCommand was set first", jump.From))
			hasJump = false
		}
	}
	if hasJump && !strings.EqualFold(jump.Value, "none") {
		r.JumpFrom = jump.From
		if depth >= maxJumpDepth {
			s.warn("ProxyJump", jump.From, "more than %d jump hosts deep; not followed", maxJumpDepth)
		} else {
			for _, hop := range strings.Split(jump.Value, ",") {
				jr, err := resolveJump(strings.TrimSpace(hop), jump.From, s, cfg, opts, depth+1)
				if err != nil {
					s.warn("ProxyJump", jump.From, "%v; not followed", err)
					r.Jumps = nil
					break
				}
				// A jump host reached through jumps of its own: those come first.
				r.Jumps = append(r.Jumps, jr.Jumps...)
				jr.Jumps = nil
				r.Jumps = append(r.Jumps, jr)
			}
		}
	}
	if hasCmd && !strings.EqualFold(pcmd.Value, "none") {
		r.ProxyCommand = Sourced[string]{Value: pcmd.Value, From: pcmd.From}
	}
	r.Ignored, r.Warnings = s.ignored, s.warns
	return r
}

// order is when option was first set (for ProxyJump against ProxyCommand).
func (s *settings) order(option string) int { return s.seq[strings.ToLower(option)] }

// resolveJump resolves one ProxyJump hop, [user@]host[:port] or
// ssh://[user@]host[:port], through ssh_config as OpenSSH does for the
// jump host, with the caller's keys and known_hosts.
func resolveJump(spec, from string, parent *settings, cfg *sshConfig, opts Options, depth int) (*Route, error) {
	spec = strings.TrimPrefix(spec, "ssh://")
	if spec == "" {
		return nil, fmt.Errorf("an empty jump host")
	}
	s := newSettings("")
	// The inventory's keys, known_hosts files and host-key policy serve
	// the jump hosts too: ezrestore dials every hop itself.
	s.idents = append(s.idents, parent.cmdIdents...)
	s.known = append(s.known, parent.cmdKnown...)
	s.cmdIdents = append(s.cmdIdents, parent.cmdIdents...)
	s.cmdKnown = append(s.cmdKnown, parent.cmdKnown...)
	if v, ok := parent.get("StrictHostKeyChecking"); ok && parent.cmdline["stricthostkeychecking"] {
		s.set("StrictHostKeyChecking", v.Value, v.From)
	}
	user, hostport := "", spec
	if i := strings.LastIndex(spec, "@"); i >= 0 {
		user, hostport = spec[:i], spec[i+1:]
	}
	host, port := hostport, ""
	if h, p, err := net.SplitHostPort(hostport); err == nil {
		host, port = h, p
	} else if strings.HasPrefix(hostport, "[") && strings.HasSuffix(hostport, "]") {
		host = hostport[1 : len(hostport)-1]
	}
	if host == "" {
		return nil, fmt.Errorf("jump host %q has no host name", spec)
	}
	if user != "" {
		s.set("User", user, from)
	}
	if port != "" {
		s.set("Port", port, from)
	}
	r := build(host, s, cfg, opts, depth)
	if r.Address.From == FromDefault {
		r.Address.From = from
	}
	return r, nil
}

func sourceOr(m map[string]string, k, def string) string {
	if v, ok := m[k]; ok {
		return v
	}
	return def
}

func yes(v string) bool {
	switch strings.ToLower(v) {
	case "yes", "true", "on":
		return true
	}
	return false
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// expandTokens substitutes the ssh_config tokens ezrestore knows in a
// HostName, IdentityFile or UserKnownHostsFile value: %h (the address, or
// the alias while the address is being resolved), %n (the alias), %p, %r,
// %d (home dir), %u (local user), %%.
func expandTokens(v, alias string, r *Route) string {
	if !strings.Contains(v, "%") {
		return v
	}
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		if v[i] != '%' || i+1 == len(v) {
			b.WriteByte(v[i])
			continue
		}
		i++
		switch v[i] {
		case '%':
			b.WriteByte('%')
		case 'h':
			if r != nil {
				b.WriteString(r.Address.Value)
			} else {
				b.WriteString(alias)
			}
		case 'n':
			b.WriteString(alias)
		case 'p':
			if r != nil {
				b.WriteString(strconv.Itoa(r.Port.Value))
			} else {
				b.WriteString("22")
			}
		case 'r':
			if r != nil {
				b.WriteString(r.User.Value)
			}
		case 'd':
			home, _ := os.UserHomeDir()
			b.WriteString(home)
		case 'u':
			b.WriteString(os.Getenv("USER"))
		default:
			b.WriteByte('%')
			b.WriteByte(v[i])
		}
	}
	return b.String()
}
