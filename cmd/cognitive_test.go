package deps_test

import (
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/uudashr/gocognit"
)

// maxCognitive is the most a function of the shipped code may weigh in
// cognitive complexity (as gocognit counts it: branches weigh more the
// deeper they nest). Cyclomatic complexity misses a function whose few
// branches nest five deep; this limit catches it.
const maxCognitive = 20

// TestCognitiveComplexity fails for every non-test function over
// maxCognitive.
func TestCognitiveComplexity(t *testing.T) {
	over, err := tooTangled("..")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range over {
		t.Errorf("%s: %s has cognitive complexity %d; split it to %d or less", s.Pos, s.FuncName, s.Complexity, maxCognitive)
	}
}

// tooTangled lists the functions under root over maxCognitive.
func tooTangled(root string) ([]gocognit.Stat, error) {
	fset := token.NewFileSet()
	var stats []gocognit.Stat
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".go") || notShipped.MatchString(filepath.ToSlash(p)) {
			return err
		}
		f, err := parser.ParseFile(fset, p, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		stats = gocognit.ComplexityStats(f, fset, stats)
		return nil
	})
	var over []gocognit.Stat
	for _, s := range stats {
		if s.Complexity > maxCognitive {
			over = append(over, s)
		}
	}
	return over, err
}

// TestCognitiveCatchesANestedFunction checks that the limit sees a
// function over it, and only that one.
func TestCognitiveCatchesANestedFunction(t *testing.T) {
	dir := t.TempDir()
	// Each level of "if x > n {" adds its depth: 1+2+...+6 = 21, and five
	// levels make 15.
	nest := func(name string, depth int) string {
		src := "\nfunc " + name + "(x int) int {\n"
		for i := range depth {
			src += strings.Repeat("\t", i+1) + "if x > 0 {\n"
		}
		src += strings.Repeat("\t", depth+1) + "return x\n"
		for i := depth; i > 0; i-- {
			src += strings.Repeat("\t", i) + "}\n"
		}
		return src + "\treturn 0\n}\n"
	}
	files := map[string]string{
		"nested.go":      "package p\n" + nest("tooNested", 6) + nest("justRight", 5),
		"nested_test.go": "package p\n" + nest("aTest", 8),
	}
	for name, src := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	over, err := tooTangled(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(over) != 1 || over[0].FuncName != "tooNested" || over[0].Complexity != 21 {
		t.Errorf("got %v; want tooNested alone, at 21", over)
	}
}
