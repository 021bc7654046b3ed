package shellwords

import (
	"reflect"
	"strings"
	"testing"
)

func TestINI(t *testing.T) {
	cases := []struct {
		in   string
		want []string
		err  bool
	}{
		{in: "h a=1 b=2", want: []string{"h", "a=1", "b=2"}},
		{in: "h k8s_nodename='master-01'", want: []string{"h", "k8s_nodename=master-01"}},
		{in: `h a="x y" b='p q'`, want: []string{"h", "a=x y", "b=p q"}},
		{in: `h a='' b=""`, want: []string{"h", "a=", "b="}},
		{in: `h a="say \"hi\"" b='back\slash'`, want: []string{"h", `a=say "hi"`, `b=back\slash`}},
		{in: `h a=x\ y`, want: []string{"h", "a=x y"}},
		{in: "h a=1 # comment b=2", want: []string{"h", "a=1"}},
		{in: "h a=1#comment", want: []string{"h", "a=1"}},
		{in: "h a='#not'", want: []string{"h", "a=#not"}},
		{in: "h\ta=1", want: []string{"h", "a=1"}},
		{in: "# all comment", want: nil},
		{in: "h a='open", err: true},
		{in: `h a=x\`, err: true},
	}
	for _, tc := range cases {
		got, err := INI.Split(tc.in)
		if (err != nil) != tc.err || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%q = %q, %v; want %q (err %v)", tc.in, got, err, tc.want, tc.err)
		}
	}
}

func TestKeyValue(t *testing.T) {
	cases := []struct {
		in   string
		want []string
		err  string
	}{
		{in: "a=1", want: []string{"a=1"}},
		{in: "  a=1   b=2 ", want: []string{"a=1", "b=2"}},
		{in: `a='x y' b="p q"`, want: []string{"a=x y", "b=p q"}},
		{in: `a="it's" b='say "hi"'`, want: []string{"a=it's", `b=say "hi"`}},
		{in: `a=x\ y b=C:\dir`, want: []string{"a=x y", `b=C:\dir`}},
		{in: "a={{ b | default('x y') }} c=1", want: []string{"a={{ b | default('x y') }}", "c=1"}},
		{in: "a=#not-a-comment", want: []string{"a=#not-a-comment"}},
		{in: "a=", want: []string{"a="}},
		{in: "a='open", err: "no closing quotation"},
		{in: "a={{ b", err: "{{ without }}"},
	}
	for _, tc := range cases {
		got, err := KeyValue.Split(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%q: err %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%q = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

func TestSystemd(t *testing.T) {
	got, err := Systemd.Split(`/bin/etcd --a="x y" 'q z' plain\ esc`)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"/bin/etcd", "--a=x y", "q z", "plain esc"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %q", got)
	}
	if _, err := Systemd.Split(`"open`); err == nil {
		t.Fatal("unterminated quote accepted")
	}
}

// The dialects part where their files' rules part: the same line splits
// three ways.
func TestDialectsDiffer(t *testing.T) {
	line := `a\=b "c\d" 'e\ f' # g`
	for _, tc := range []struct {
		d    Dialect
		want []string
	}{
		{INI, []string{"a=b", `c\d`, `e\ f`}},
		{KeyValue, []string{`a=b`, `c\d`, `e f`, "#", "g"}},
		{Systemd, []string{"a=b", "cd", `e\ f`, "#", "g"}},
	} {
		got, err := tc.d.Split(line)
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%+v: %q, %v; want %q", tc.d, got, err, tc.want)
		}
	}
}
