package vault

import (
	"net/http"
	"regexp"
	"strings"

	"github.com/clinicbox/clinicbox/appliance/archive"
	"github.com/clinicbox/clinicbox/appliance/vault/wire"
)

// Every name a client supplies (a namespace, a backup ID, a file name, a
// timeline, a repository path, a log) is checked here, once per request, before
// any handler runs: a name that could lead out of its directory is refused
// with 400 and the reason. The namespace's directory is also opened as an
// os.Root, so a check missed here still cannot reach another namespace.

// maxName bounds every name; PostgreSQL's and the repository's own are far
// shorter.
const maxName = 128

var (
	namespaceName = wire.Namespace
	timelineName  = regexp.MustCompile(`^[0-9]{1,10}$`)
)

// badName is the answer to a name the vault will not use.
func badName(kind, name, why string) error {
	if len(name) > maxName {
		name = name[:maxName] + "..."
	}
	return problem("bad_name", "%s %q: %s", kind, name, why)
}

// checkPlain checks a single path element: not empty, not too long, no
// separator, no NUL or other control character, not starting with a dot
// (which also refuses "." and ".." and the vault's own temporary names).
func checkPlain(kind, name string) error {
	switch {
	case name == "":
		return badName(kind, name, "is empty")
	case len(name) > maxName:
		return badName(kind, name, "is longer than 128 bytes")
	case strings.ContainsAny(name, `/\`):
		return badName(kind, name, "holds a path separator")
	case strings.HasPrefix(name, "."):
		return badName(kind, name, "starts with a dot")
	}
	for _, r := range name {
		if r < 0x20 || r == 0x7f {
			return badName(kind, name, "holds a control character")
		}
	}
	return nil
}

func checkNamespace(ns string) error {
	if err := checkPlain("namespace", ns); err != nil {
		return err
	}
	if !namespaceName.MatchString(ns) {
		return badName("namespace", ns, "is not a namespace (letters, digits, _ and -, as /v1/status lists them)")
	}
	return nil
}

func checkBackupID(id string) error {
	if err := checkPlain("backup ID", id); err != nil {
		return err
	}
	if !archive.ValidID(id) {
		return badName("backup ID", id, "is not a backup ID like 20261122T101500Z")
	}
	return nil
}

func checkFileName(name string) error { return checkPlain("file name", name) }

func checkLogName(name string) error {
	if _, ok := logKinds[name]; !ok {
		return badName("log", name, "is not a log the vault keeps (custody or audit)")
	}
	return nil
}

func checkTimeline(tli string) error {
	if !timelineName.MatchString(tli) {
		return badName("timeline", tli, "is not a timeline number")
	}
	return nil
}

// checkRepoPath checks a repository path (forward slashes): every element
// a plain name.
func checkRepoPath(p string) error {
	if p == "" || len(p) > 4*maxName {
		return badName("repository path", p, "is empty or too long")
	}
	for _, el := range strings.Split(p, "/") {
		if err := checkPlain("repository path", el); err != nil {
			return badName("repository path", p, "element "+strings.TrimPrefix(err.Error(), "vault: "))
		}
	}
	return nil
}

// checkNames is the one place a request's names are checked: the path's
// wildcards by their names in the routes, and the ?box= of a read.
func checkNames(r *http.Request) error {
	checks := []struct {
		value string
		check func(string) error
	}{
		{r.PathValue("id"), checkBackupID},
		{r.PathValue("name"), checkFileName},
		{r.PathValue("tli"), checkTimeline},
		{r.PathValue("log"), checkLogName},
		{r.PathValue("path"), checkRepoPath},
		{r.URL.Query().Get("box"), checkNamespace},
	}
	for _, c := range checks {
		if c.value == "" {
			continue // not a name of this route (an empty wildcard never matches)
		}
		if err := c.check(c.value); err != nil {
			return err
		}
	}
	return nil
}
