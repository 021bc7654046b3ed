package etcdhost

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/ezrestore/ezrestore/fanout"
	"github.com/ezrestore/ezrestore/inventory"
	"github.com/ezrestore/ezrestore/transport"
)

// A restore ends with etcd starting and etcdctl asking it for its health,
// both over TLS with the files the unit names. An expired certificate, one
// not valid yet (a host clock off), or one whose SANs miss the member's own
// address makes that end fail ("x509: certificate has expired or is not yet
// valid") after every member's data was already swapped. Preflight reads the
// certificate files (never the keys) and parses them on the bastion.

// CertWarnBefore is how long before expiry preflight starts warning.
const CertWarnBefore = 30 * 24 * time.Hour

// CertUse is one way the unit uses a certificate file.
type CertUse struct {
	// Flag is etcd's flag ("cert-file", "peer-trusted-ca-file", ...).
	Flag string `json:"flag"`
	// From says where the setting was read (ExecStart, environment, config file).
	From string `json:"from,omitempty"`
}

// CertFile is one certificate file on a host and what it holds.
type CertFile struct {
	Path string    `json:"path"`
	Uses []CertUse `json:"uses"`
	// Err is why the file could not be read or parsed.
	Err   string      `json:"error,omitempty"`
	Certs []*CertInfo `json:"certs,omitempty"`
}

// CertInfo is what the checks need of one certificate.
type CertInfo struct {
	Subject   string    `json:"subject"`
	NotBefore time.Time `json:"not_before"`
	NotAfter  time.Time `json:"not_after"`
	SANs      []string  `json:"sans,omitempty"`
	IsCA      bool      `json:"is_ca,omitempty"`
	cert      *x509.Certificate
}

// certRoles says, per flag, what the file is for, in messages.
var certRoles = map[string]string{
	"cert-file":            "server certificate, which etcdctl also presents as its client certificate",
	"peer-cert-file":       "peer certificate",
	"trusted-ca-file":      "CA that client certificates and etcdctl's view of the server are checked against",
	"peer-trusted-ca-file": "CA that peer certificates are checked against",
}

// CertFiles lists the certificate files the unit names, each path once, in
// a fixed order. Keys are not listed: they are never read.
func (c *EtcdConfig) CertFiles() []*CertFile {
	var out []*CertFile
	byPath := map[string]*CertFile{}
	for _, u := range []struct{ flag, path string }{
		{"cert-file", c.CertFile}, {"peer-cert-file", c.PeerCertFile},
		{"trusted-ca-file", c.TrustedCAFile}, {"peer-trusted-ca-file", c.PeerTrustedCAFile},
	} {
		if u.path == "" {
			continue
		}
		cf := byPath[u.path]
		if cf == nil {
			cf = &CertFile{Path: u.path}
			byPath[u.path] = cf
			out = append(out, cf)
		}
		cf.Uses = append(cf.Uses, CertUse{Flag: u.flag, From: c.From[u.flag]})
	}
	return out
}

// parse reads every PEM certificate of a file's contents.
func (cf *CertFile) parse(data []byte) {
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			cf.Err = fmt.Sprintf("certificate %d cannot be parsed: %v", len(cf.Certs)+1, err)
			return
		}
		info := &CertInfo{Subject: c.Subject.String(), NotBefore: c.NotBefore, NotAfter: c.NotAfter, IsCA: c.IsCA, cert: c}
		info.SANs = append(info.SANs, c.DNSNames...)
		for _, ip := range c.IPAddresses {
			info.SANs = append(info.SANs, ip.String())
		}
		cf.Certs = append(cf.Certs, info)
	}
	if len(cf.Certs) == 0 && cf.Err == "" {
		cf.Err = "holds no PEM certificate"
	}
}

func (cf *CertFile) usedAs(flag string) bool {
	for _, u := range cf.Uses {
		if u.Flag == flag {
			return true
		}
	}
	return false
}

// label names the file with its flags and where they were set.
func (cf *CertFile) label() string {
	var parts []string
	for _, u := range cf.Uses {
		p := "--" + u.Flag
		if u.From != "" && !strings.HasPrefix(u.From, "ExecStart") {
			p += " from " + u.From
		}
		parts = append(parts, p)
	}
	return cf.Path + " (" + strings.Join(parts, ", ") + ")"
}

func (cf *CertFile) roles() string {
	var rs []string
	for _, u := range cf.Uses {
		rs = append(rs, certRoles[u.Flag])
	}
	return strings.Join(rs, "; ")
}

func timeText(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05 UTC") }

func (ci *CertInfo) dates() string {
	return fmt.Sprintf("valid from %s to %s", timeText(ci.NotBefore), timeText(ci.NotAfter))
}

func (ci *CertInfo) sanText() string {
	if len(ci.SANs) == 0 {
		return "none"
	}
	return strings.Join(ci.SANs, ", ")
}

// urlHosts are the hosts of a comma-separated URL list, https ones only
// (no certificate is presented on http).
func urlHosts(list string) []string {
	var hosts []string
	for _, raw := range strings.Split(list, ",") {
		u, err := url.Parse(strings.TrimSpace(raw))
		if err != nil || u.Scheme != "https" || u.Hostname() == "" {
			continue
		}
		hosts = append(hosts, u.Hostname())
	}
	return hosts
}

// CheckCerts judges a member's certificate files at time t: problems refuse
// the restore, warnings are notes in the plan. Each names the file, its
// dates or SANs, and what to do.
func CheckCerts(c *EtcdConfig, files []*CertFile, t time.Time) (problems, warnings []string) {
	for _, cf := range files {
		if cf.Err != "" {
			problems = append(problems, fmt.Sprintf("certificate file %s: %s; etcd cannot use it as its %s. Put the file back or fix the path in etcd.service, then plan again",
				cf.label(), oneLineText(cf.Err), cf.roles()))
			continue
		}
		for i, ci := range cf.Certs {
			which := ""
			if len(cf.Certs) > 1 {
				which = fmt.Sprintf(" (certificate %d of %d, %s)", i+1, len(cf.Certs), ci.Subject)
			}
			switch {
			case t.After(ci.NotAfter):
				problems = append(problems, fmt.Sprintf("certificate %s%s has expired: %s, SANs %s; etcd and etcdctl fail with \"x509: certificate has expired or is not yet valid\". Renew it with the cluster's CA (same SANs), then plan again",
					cf.label(), which, ci.dates(), ci.sanText()))
			case t.Before(ci.NotBefore):
				problems = append(problems, fmt.Sprintf("certificate %s%s is not valid yet: %s, and the bastion's clock says %s; etcd and etcdctl fail with \"x509: certificate has expired or is not yet valid\". Check the clocks (bastion and host), or reissue the certificate, then plan again",
					cf.label(), which, ci.dates(), timeText(t)))
			case ci.NotAfter.Sub(t) < CertWarnBefore:
				warnings = append(warnings, fmt.Sprintf("warning: certificate %s%s expires in %d days (%s): renew it soon",
					cf.label(), which, int(ci.NotAfter.Sub(t).Hours()/24), timeText(ci.NotAfter)))
			}
		}
		// The leaf (the first certificate) must name the address it serves.
		leaf := cf.Certs[0]
		if cf.usedAs("cert-file") && !hasEKU(leaf.cert, x509.ExtKeyUsageClientAuth) {
			warnings = append(warnings, fmt.Sprintf("warning: certificate %s is not for client authentication (its extended key usage lacks clientAuth), yet etcdctl presents it as its client certificate: with --client-cert-auth, etcd refuses etcdctl and the health check after the restore fails", cf.label()))
		}
		for _, sc := range []struct{ flag, urls, setting string }{
			{"cert-file", c.ClientURLs, "advertise-client-urls"},
			{"peer-cert-file", c.PeerURL, "initial-advertise-peer-urls"},
		} {
			if !cf.usedAs(sc.flag) {
				continue
			}
			for _, h := range urlHosts(sc.urls) {
				if err := leaf.cert.VerifyHostname(h); err != nil {
					problems = append(problems, fmt.Sprintf("certificate %s does not cover %s of %s %s: its SANs are %s; a TLS client there fails with \"x509: certificate is valid for ..., not %s\". Reissue it with %s in its SANs, then plan again",
						cf.label(), h, sc.setting, sc.urls, leaf.sanText(), h, h))
				}
			}
		}
	}
	return problems, warnings
}

// CertExpiry is the certificate that expires first, and where it is.
type CertExpiry struct {
	Host     string    `json:"host"`
	File     string    `json:"file"`
	Flags    []string  `json:"flags"`
	Subject  string    `json:"subject"`
	NotAfter time.Time `json:"not_after"`
}

// Text says which certificate expires first, on which host, and when,
// relative to t.
func (e *CertExpiry) Text(t time.Time) string {
	return fmt.Sprintf("%s on %s (--%s), %s", e.File, e.Host, strings.Join(e.Flags, ", --"), e.when(t))
}

// fileText is Text without the host, for a line about that host.
func (e *CertExpiry) FileText(t time.Time) string {
	return fmt.Sprintf("%s (--%s), %s", e.File, strings.Join(e.Flags, ", --"), e.when(t))
}

func (e *CertExpiry) when(t time.Time) string {
	left := e.NotAfter.Sub(t)
	if left < 0 {
		return timeText(e.NotAfter) + ", EXPIRED " + roughly(-left) + " ago"
	}
	return timeText(e.NotAfter) + ", in " + roughly(left)
}

// roughly is a duration in days, or hours under two days.
func roughly(d time.Duration) string {
	if d < 48*time.Hour {
		return fmt.Sprintf("%d hours", int(d.Hours()))
	}
	return fmt.Sprintf("%d days", int(d.Hours()/24))
}

// EarliestExpiry finds the certificate that expires first among the hosts'
// facts (nil entries are skipped); nil when none was read.
func EarliestExpiry(facts []*EtcdFacts) *CertExpiry {
	var best *CertExpiry
	for _, f := range facts {
		if f == nil {
			continue
		}
		for _, cf := range f.Certs {
			for _, ci := range cf.Certs {
				if best != nil && !ci.NotAfter.Before(best.NotAfter) {
					continue
				}
				var flags []string
				for _, u := range cf.Uses {
					flags = append(flags, u.Flag)
				}
				best = &CertExpiry{Host: f.Host, File: cf.Path, Flags: flags, Subject: ci.Subject, NotAfter: ci.NotAfter}
			}
		}
	}
	return best
}

// hasEKU is true when a certificate may be used for u (no extended key
// usage at all means any use).
func hasEKU(c *x509.Certificate, u x509.ExtKeyUsage) bool {
	if len(c.ExtKeyUsage) == 0 && len(c.UnknownExtKeyUsage) == 0 {
		return true
	}
	for _, e := range c.ExtKeyUsage {
		if e == u || e == x509.ExtKeyUsageAny {
			return true
		}
	}
	return false
}

// certScript prints each certificate file in a section of its own.
func certScript(certs []*CertFile) string {
	var b strings.Builder
	for i, cf := range certs {
		b.WriteString(catScript(fmt.Sprintf("cert%d", i), cf.Path))
	}
	return b.String()
}

// readCerts fills certs from certScript's sections.
func readCerts(certs []*CertFile, s map[string]string) {
	for i, cf := range certs {
		text := s[fmt.Sprintf("cert%d", i)]
		if _, missing := s[fmt.Sprintf("nocert%d", i)]; missing {
			cf.Err = strings.TrimSpace(text)
			if cf.Err == "" {
				cf.Err = "cannot be read"
			}
			continue
		}
		cf.parse([]byte(text))
	}
}

// ReadCerts reads, read-only, the certificate files a host's etcd unit
// names: the unit, its files, then the certificates, in three round trips
// and without running any etcd binary.
func ReadCerts(ctx context.Context, conn transport.Conn) ([]*CertFile, error) {
	cfg, _, err := readEtcdConfig(ctx, conn, nil)
	if err != nil {
		return nil, err
	}
	certs := cfg.CertFiles()
	if len(certs) == 0 {
		return nil, nil
	}
	res, err := conn.Run(ctx, certScript(certs))
	if err != nil {
		return nil, err
	}
	readCerts(certs, Sections(string(res.Stdout)))
	return certs, nil
}

// ReadEarliestExpiry reads every member's certificate files in parallel and
// returns the certificate that expires first (nil when none could be read).
func ReadEarliestExpiry(ctx context.Context, hosts Hosts, forks int, members []inventory.EtcdMember) *CertExpiry {
	facts := make([]*EtcdFacts, len(members))
	fanout.Each(ctx, len(members), forks, func(ctx context.Context, i int) error {
		h := members[i].Host
		conn, err := hosts.Conn(h.Name)
		if err != nil {
			return err
		}
		certs, err := ReadCerts(ctx, conn)
		if err != nil {
			return err
		}
		facts[i] = &EtcdFacts{Host: h.Name, Certs: certs}
		return nil
	})
	return EarliestExpiry(facts)
}
