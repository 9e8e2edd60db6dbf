package deps_test

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/fzipp/gocyclo"
)

// maxComplexity is the most branches a function of the shipped code may
// have (cyclomatic complexity, as gocyclo counts it); past it, split the
// function along its steps.
const maxComplexity = 15

// notShipped are the files the limit leaves alone: tests, test data and
// the build's scratch space.
var notShipped = regexp.MustCompile(`_test\.go$|/testdata/|/_work/`)

// notYetSplit are functions over the limit, written while the limit was
// being set, that still wait for their split; an entry is removed with
// its split (the test fails while it stays).
var notYetSplit = map[string]bool{}

// TestComplexity fails for every non-test function over maxComplexity.
func TestComplexity(t *testing.T) {
	seen := map[string]bool{}
	for _, s := range tooComplex([]string{".."}) {
		seen[s.FuncName] = true
		if !notYetSplit[s.FuncName] {
			t.Errorf("%s: %s has cyclomatic complexity %d; split it to %d or less", s.Pos, s.FuncName, s.Complexity, maxComplexity)
		}
	}
	for name := range notYetSplit {
		if !seen[name] {
			t.Errorf("%s is within the limit now; remove it from notYetSplit", name)
		}
	}
}

// tooComplex lists the functions under paths over maxComplexity.
func tooComplex(paths []string) gocyclo.Stats {
	return gocyclo.Analyze(paths, notShipped).SortAndFilter(-1, maxComplexity)
}

// TestComplexityCatchesABranchyFunction checks that the limit sees a
// function over it, and only that one.
func TestComplexityCatchesABranchyFunction(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{
		"branchy.go":      "package p\n" + branchy(maxComplexity+1, "tooBranchy") + branchy(maxComplexity, "justRight"),
		"branchy_test.go": "package p\n" + branchy(maxComplexity+5, "aTest"),
	}
	for name, src := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	over := tooComplex([]string{dir})
	if len(over) != 1 || over[0].FuncName != "tooBranchy" || over[0].Complexity != maxComplexity+1 {
		t.Errorf("got %v; want tooBranchy alone, at %d", over, maxComplexity+1)
	}
}

// branchy is a function of complexity n: one path and n-1 ifs.
func branchy(n int, name string) string {
	src := fmt.Sprintf("\nfunc %s(x int) int {\n", name)
	for i := 1; i < n; i++ {
		src += fmt.Sprintf("\tif x == %d {\n\t\treturn %d\n\t}\n", i, i)
	}
	return src + "\treturn 0\n}\n"
}
