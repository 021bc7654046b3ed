package inventory

import (
	"reflect"
	"strings"
	"testing"
)

func TestExpandHostPattern(t *testing.T) {
	cases := []struct {
		in    string
		names []string
		port  string
		err   string
	}{
		{in: "10.0.0.1", names: []string{"10.0.0.1"}},
		{in: "10.0.0.[1:3]", names: []string{"10.0.0.1", "10.0.0.2", "10.0.0.3"}},
		{in: "node[01:03]", names: []string{"node01", "node02", "node03"}},
		{in: "node[8:10]", names: []string{"node8", "node9", "node10"}},
		{in: "node[098:100]", names: []string{"node098", "node099", "node100"}},
		{in: "node[:2]", names: []string{"node0", "node1", "node2"}},
		{in: "node[1:7:3]", names: []string{"node1", "node4", "node7"}},
		{in: "db-[a:c]", names: []string{"db-a", "db-b", "db-c"}},
		{in: "db-[y:B]", names: []string{"db-y", "db-z", "db-A", "db-B"}},
		{in: "r[1:2]n[a:b]", names: []string{"r1na", "r1nb", "r2na", "r2nb"}},
		{in: "host.example:2222", names: []string{"host.example"}, port: "2222"},
		{in: "n[1:2]:2200", names: []string{"n1", "n2"}, port: "2200"},
		{in: "[2001:db8::1]", names: []string{"2001:db8::1"}},
		{in: "[2001:db8::1]:22", names: []string{"2001:db8::1"}, port: "22"},
		{in: "2001:db8::1", names: []string{"2001:db8::1"}},
		{in: "fe80::1%eth0", names: []string{"fe80::1%eth0"}},
		{in: "", err: "empty host name"},
		{in: "h:", err: "ends in ':'"},
		{in: "h:0", err: "invalid port"},
		{in: "h:port", err: "invalid port"},
		{in: "a=b", err: "not a host name"},
		{in: "n[3:1]", err: "begins after its end"},
		{in: "n[1:]", err: "has no end"},
		{in: "n[1:3:0]", err: "invalid step"},
		{in: "n[1:3:x]", err: "invalid step"},
		{in: "n[1]", err: "must be [begin:end]"},
		{in: "n[1:2:3:4]", err: "must be [begin:end]"},
		{in: "n[01:100]", err: "same width"},
		{in: "n[a:3]", err: "numbers or single letters"},
		{in: "n[aa:ab]", err: "numbers or single letters"},
		{in: "n[1:3", err: "without closing"},
		{in: "n1:3]", err: "invalid port"},
		{in: "n]", err: "']' without '['"},
		{in: "n[0:9999]x[0:9]", err: "more than 10000 hosts"},
		{in: "n[0:99999999999999999999]", err: "out of bounds"},
		{in: "[1:2]:[3:4]:x", err: "IPv6 address with a port"},
	}
	for _, tc := range cases {
		names, port, err := expandHostPattern(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%q: err %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(names, tc.names) || port != tc.port {
			t.Errorf("%q = %v, %q, %v; want %v, %q", tc.in, names, port, err, tc.names, tc.port)
		}
	}
}

func TestINIVarValue(t *testing.T) {
	for in, want := range map[string]string{
		`"6443"`:                 "6443",
		`''`:                     "",
		`/usr/bin/python3`:       "/usr/bin/python3",
		`"a" # comment`:          "a",
		`'it\'s'`:                "it's",
		`"tab\there"`:            "tab\there",
		`"keep\d"`:               `keep\d`,
		`plain # not a comment`:  "plain # not a comment",
		`"a" "b"`:                `"a" "b"`,
		`"unterminated`:          `"unterminated`,
		`"{{ base_dir }}/x"`:     "{{ base_dir }}/x",
		``:                       "",
		`ipvs`:                   "ipvs",
		`"with = sign"`:          "with = sign",
		`"x"trailing`:            `"x"trailing`,
		`"semicolon" ; not ours`: `"semicolon" ; not ours`,
	} {
		if got := iniVarValue(in); got != want {
			t.Errorf("iniVarValue(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestInterpolation(t *testing.T) {
	vars := map[string]rawVar{}
	for k, v := range map[string]string{
		"base_dir":    "/etc/kubeasz",
		"cluster_dir": "{{ base_dir }}/clusters/_cluster_name_",
		"nospace":     "{{base_dir}}",
		"deep":        "{{ cluster_dir }}/ssl",
		"def1":        "{{ missing | default('x') }}",
		"def2":        `{{ missing|default("y z") }}`,
		"def3":        "{{ missing | d(base_dir) }}",
		"def4":        "{{ base_dir | default('unused') }}",
		"def5":        "{{ missing | default(missing2) }}",
		"def6":        "{{ missing | default('') }}",
		"filter":      "{{ base_dir | upper }}",
		"unknown":     "a{{ nope }}b{{ base_dir }}",
		"via":         "{{ unknown }}",
		"jinja":       "{% if a %}{{ base_dir }}{% endif %}",
		"comment":     "{# c #}{{ base_dir }}",
		"open":        "{{ base_dir",
		"twice":       "{{ base_dir }}{{ base_dir }}",
		"host":        "{{ inventory_hostname }}",
		"unsafe":      "{{ base_dir }}",
		"spaces":      "{{   base_dir   }}",
	} {
		vars[k] = rawVar{val: v, pos: Pos{"f", 1}, unsafe: k == "unsafe"}
	}
	r := newResolver(vars, map[string]string{"inventory_hostname": "10.0.0.1"}, "k8s-01")
	want := map[string]string{
		"cluster_dir": "/etc/kubeasz/clusters/k8s-01",
		"nospace":     "/etc/kubeasz",
		"deep":        "/etc/kubeasz/clusters/k8s-01/ssl",
		"def1":        "x",
		"def2":        "y z",
		"def3":        "/etc/kubeasz",
		"def4":        "/etc/kubeasz",
		"def5":        "{{ missing | default(missing2) }}",
		"def6":        "",
		"filter":      "{{ base_dir | upper }}",
		"unknown":     "a{{ nope }}b/etc/kubeasz",
		"via":         "a{{ nope }}b/etc/kubeasz",
		"jinja":       "{% if a %}{{ base_dir }}{% endif %}",
		"comment":     "{# c #}{{ base_dir }}",
		"open":        "{{ base_dir",
		"twice":       "/etc/kubeasz/etc/kubeasz",
		"host":        "10.0.0.1",
		"unsafe":      "{{ base_dir }}",
		"spaces":      "/etc/kubeasz",
	}
	for k, w := range want {
		got, ok, err := r.get(k)
		if err != nil || !ok || got != w {
			t.Errorf("%s = %q, %v, %v; want %q", k, got, ok, err, w)
		}
	}
	for k, w := range map[string][]string{"unknown": {"nope"}, "via": {"nope"}, "def5": {"missing2"}, "deep": nil} {
		if got := r.undef[k]; !reflect.DeepEqual(got, w) {
			t.Errorf("undef[%s] = %v, want %v", k, got, w)
		}
	}
}

func TestInterpolationCycle(t *testing.T) {
	for _, vars := range []map[string]string{
		{"a": "{{ a }}"},
		{"a": "{{ b }}", "b": "x{{ a }}"},
		{"a": "{{ b | default('x') }}", "b": "{{ a }}"},
	} {
		raw := map[string]rawVar{}
		for k, v := range vars {
			raw[k] = rawVar{val: v, pos: Pos{"hosts", 7}}
		}
		_, _, err := newResolver(raw, nil, "").get("a")
		if err == nil || !strings.HasPrefix(err.Error(), "hosts:7: variable a refers to itself: a -> ") {
			t.Errorf("%v: err = %v", vars, err)
		}
	}
}

func TestIsYAMLInventory(t *testing.T) {
	for _, tc := range []struct {
		path, data string
		yaml       bool
	}{
		{"x.yml", "[etcd]", true},
		{"x.YAML", "", true},
		{"x.json", "", true},
		{"x.ini", "all:", false},
		{"hosts", "# c\n; c\n\nall:\n  hosts:", true},
		{"hosts", "---\nall:", true},
		{"hosts", "{\"all\": {}}", true},
		{"hosts", "etcd: {hosts: {a: }}", true},
		{"hosts", "[etcd]\n10.0.0.1", false},
		{"hosts", "10.0.0.1 a=b: c", false},
		{"hosts", "host:22", false},
		{"hosts", "host:22 ansible_user=x", false},
		{"hosts", "", false},
	} {
		if got := isYAMLInventory(tc.path, []byte(tc.data)); got != tc.yaml {
			t.Errorf("isYAMLInventory(%q, %q) = %v", tc.path, tc.data, got)
		}
	}
}

func TestParseBool(t *testing.T) {
	for in, want := range map[string]bool{"true": true, "True": true, "yes": true, "1": true, "on": true,
		"false": false, "no": false, "0": false, "": false, "OFF": false} {
		if got, ok := parseBool(in); !ok || got != want {
			t.Errorf("parseBool(%q) = %v, %v", in, got, ok)
		}
	}
	if _, ok := parseBool("maybe"); ok {
		t.Error("maybe is not a bool")
	}
}

func TestErrorFormat(t *testing.T) {
	cases := []struct {
		err  *Error
		want string
	}{
		{&Error{File: "hosts", Line: 12, Msg: "bad"}, "hosts:12: bad"},
		{&Error{File: "hosts", Msg: "bad"}, "hosts: bad"},
		{&Error{Msg: "bad"}, "bad"},
		{&Error{File: "c.yml", Line: 3, Msg: "invalid", Err: ErrSyntax}, "c.yml:3: invalid: inventory syntax error"},
		{&Error{File: "c.yml", Err: ErrSyntax}, "c.yml: inventory syntax error"},
	}
	for _, tc := range cases {
		if got := tc.err.Error(); got != tc.want {
			t.Errorf("%q, want %q", got, tc.want)
		}
	}
}
