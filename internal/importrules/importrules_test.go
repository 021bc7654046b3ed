package importrules

import (
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

const module = "github.com/ezrestore/ezrestore/"

// only lists, for a package whose doc states it, every project package its
// non-test files may import. A package missing here has no such rule, but
// still obeys the layer rules in TestLayers.
var only = map[string][]string{
	"inventory":                {"internal/shellwords"},
	"fanout":                   {},
	"playbooks":                {},
	"seal":                     {},
	"internal/atomicfile":      {},
	"internal/filelock":        {},
	"internal/probecache":      {},
	"internal/bytesize":        {},
	"internal/shellwords":      {},
	"internal/syncbuf":         {},
	"internal/localetcd":       {},
	"snapshot":                 {"internal/atomicfile", "objects"},
	"objects":                  {},
	"diff":                     {"objects", "snapshot", "fanout"},
	"kubeapi":                  {"inventory"},
	"internal/testkit/labtest": {"lab"},
	// etcd on a host: reads through transport, never the engine or a command.
	"etcdhost": {"transport", "fanout", "inventory", "internal/bytesize", "internal/probecache", "internal/shellwords"},
	// The etcd client and the encryption-at-rest check read hosts through
	// transport and etcdhost; neither knows the engine or a command.
	"etcdclient": {"cluster", "etcdhost", "inventory", "transport"},
	"atrest":     {"etcdhost", "objects", "snapshot", "transport"},
}

// never lists, per package, project packages it must not import (directly).
var never = map[string][]string{
	// The transport knows nothing of etcd, playbooks or restores.
	"transport": {"orchestrator", "steps", "etcdhost", "restore", "backup", "cmd", "cluster", "runlock", "lab"},
	// The engine knows nothing of etcd or restores.
	"orchestrator": {"steps", "etcdhost", "restore", "backup", "snapshot", "cmd", "cluster", "playbooks", "lab"},
	// Actions do not call the commands.
	"steps": {"restore", "backup", "cmd", "lab"},
	// cluster opens clusters for the commands; it does not call them.
	"cluster": {"restore", "backup", "cmd", "steps", "orchestrator"},
	"runlock": {"restore", "backup", "cmd", "steps", "orchestrator"},
	"offsite": {"restore", "backup", "cmd", "steps", "orchestrator", "transport"},
	"verify":  {"restore", "backup", "cmd", "steps", "orchestrator", "transport"},
}

// pkgImports reads the project imports of every package under the module
// root: of its non-test files, and of its test files apart.
func pkgImports(t *testing.T) (code, tests map[string][]string) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("module root not at %s: %v", root, err)
	}
	code, tests = map[string][]string{}, map[string][]string{}
	fset := token.NewFileSet()
	err = filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if n := d.Name(); p != root && (strings.HasPrefix(n, ".") || n == "testdata" || n == "bin") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(p, ".go") {
			return nil
		}
		f, err := parser.ParseFile(fset, p, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, filepath.Dir(p))
		pkg := filepath.ToSlash(rel)
		into := code
		if strings.HasSuffix(p, "_test.go") {
			into = tests
		}
		for _, imp := range f.Imports {
			path := strings.Trim(imp.Path.Value, `"`)
			if rel := strings.TrimPrefix(path, module); rel != path && !contains(into[pkg], rel) {
				into[pkg] = append(into[pkg], rel)
			}
		}
		if _, ok := into[pkg]; !ok {
			into[pkg] = nil
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return code, tests
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func TestStatedRules(t *testing.T) {
	code, _ := pkgImports(t)
	for pkg, allowed := range only {
		if _, ok := code[pkg]; !ok {
			t.Errorf("rule for %s, which has no Go files: drop the rule or fix its name", pkg)
			continue
		}
		for _, imp := range code[pkg] {
			if !contains(allowed, imp) {
				t.Errorf("%s imports %s; its rule allows only %v (change the code, or the rule and the package doc together)", pkg, imp, allowed)
			}
		}
	}
	for pkg, banned := range never {
		if _, ok := code[pkg]; !ok {
			t.Errorf("rule for %s, which has no Go files", pkg)
		}
		for _, imp := range code[pkg] {
			if contains(banned, imp) {
				t.Errorf("%s imports %s, which its rule forbids", pkg, imp)
			}
		}
	}
}

// The layers: nothing imports cmd; bench mains and test helpers are never
// imported by the program; only tests and benches import the test helpers.
func TestLayers(t *testing.T) {
	code, tests := pkgImports(t)
	var pkgs []string
	for p := range code {
		pkgs = append(pkgs, p)
	}
	sort.Strings(pkgs)
	for _, pkg := range pkgs {
		for _, imp := range code[pkg] {
			switch {
			case imp == "cmd" && pkg != "cmd/ezrestore":
				t.Errorf("%s imports cmd: only the main package may", pkg)
			case strings.HasPrefix(imp, "bench/"):
				t.Errorf("%s imports the bench main %s", pkg, imp)
			case strings.HasPrefix(imp, "internal/testkit/") && !strings.HasPrefix(pkg, "internal/testkit/") && !strings.HasPrefix(pkg, "bench/"):
				t.Errorf("%s (not a test) imports the test helper %s", pkg, imp)
			}
		}
	}
	for pkg, imps := range tests {
		for _, imp := range imps {
			if strings.HasPrefix(imp, "bench/") {
				t.Errorf("tests of %s import the bench main %s", pkg, imp)
			}
		}
	}
}
