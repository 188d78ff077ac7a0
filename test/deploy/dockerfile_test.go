package deploy

import (
	"encoding/json"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// instruction is one Dockerfile instruction, continuation lines joined.
type instruction struct {
	line    int
	command string // upper case: FROM, COPY, ...
	args    string
}

// parseDockerfile splits a Dockerfile into instructions. It knows what
// this project's Dockerfile uses (comments, parser directives, backslash
// continuations), not heredocs.
func parseDockerfile(text string) []instruction {
	var out []instruction
	var current strings.Builder
	start := 0
	for i, line := range strings.Split(text, "\n") {
		trimmed := strings.TrimSpace(line)
		if current.Len() == 0 && (trimmed == "" || strings.HasPrefix(trimmed, "#")) {
			continue
		}
		if current.Len() > 0 && strings.HasPrefix(trimmed, "#") {
			continue // comments inside a continued instruction are dropped
		}
		if current.Len() == 0 {
			start = i + 1
		}
		if cont, ok := strings.CutSuffix(trimmed, `\`); ok {
			current.WriteString(cont + " ")
			continue
		}
		current.WriteString(trimmed)
		command, args, _ := strings.Cut(current.String(), " ")
		out = append(out, instruction{line: start, command: strings.ToUpper(command), args: strings.TrimSpace(args)})
		current.Reset()
	}
	return out
}

// stage is one FROM and what follows it.
type stage struct {
	image, name string
	workdir     string
	body        []instruction
}

func stages(instructions []instruction) []*stage {
	var out []*stage
	for _, in := range instructions {
		if in.command == "FROM" {
			fields := strings.Fields(in.args)
			fields = slices.DeleteFunc(fields, func(f string) bool { return strings.HasPrefix(f, "--") })
			s := &stage{image: fields[0]}
			if len(fields) == 3 && strings.EqualFold(fields[1], "AS") {
				s.name = fields[2]
			}
			out = append(out, s)
			continue
		}
		if len(out) == 0 {
			continue // ARG before the first FROM
		}
		s := out[len(out)-1]
		if in.command == "WORKDIR" {
			s.workdir = path.Join(s.workdir, in.args)
		}
		s.body = append(s.body, in)
	}
	return out
}

// copyArgs returns the --from stage (or "") and the sources of a COPY.
func copyArgs(args string) (from string, sources []string, dest string) {
	fields := strings.Fields(args)
	var rest []string
	for _, f := range fields {
		if v, ok := strings.CutPrefix(f, "--from="); ok {
			from = v
		} else if !strings.HasPrefix(f, "--") {
			rest = append(rest, f)
		}
	}
	return from, rest[:len(rest)-1], rest[len(rest)-1]
}

// makefileBinaries returns the BINARIES of the Makefile and checks that its
// build target builds them, statically, from ./cmd/.
func makefileBinaries(t *testing.T) []string {
	t.Helper()
	makefile := strings.ReplaceAll(readRepoFile(t, "Makefile"), "\\\n", " ")
	var binaries []string
	for _, m := range regexp.MustCompile(`(?m)^BINARIES\s*(:=|\+=|=|\?=)(.*)$`).FindAllStringSubmatch(makefile, -1) {
		if m[1] != "+=" {
			binaries = nil
		}
		binaries = append(binaries, strings.Fields(m[2])...)
	}
	if len(binaries) == 0 {
		t.Fatal("Makefile: no BINARIES")
	}
	recipe := regexp.MustCompile(`(?m)^build:.*\n((?:\t.*\n)+)`).FindStringSubmatch(makefile)
	if recipe == nil {
		t.Fatal("Makefile: no build target with a recipe")
	}
	for _, want := range []string{"CGO_ENABLED=0", "-ldflags '$(LDFLAGS)'", "$(addprefix ./cmd/,$(BINARIES))", "-o bin/"} {
		if !strings.Contains(recipe[1], want) {
			t.Errorf("Makefile build recipe lacks %q, which the Dockerfile relies on:\n%s", want, recipe[1])
		}
	}
	return binaries
}

// goDirective returns the major.minor of go.mod's go directive.
func goDirective(t *testing.T) string {
	t.Helper()
	m := regexp.MustCompile(`(?m)^go (\d+\.\d+)(\.\d+)?\s*$`).FindStringSubmatch(readRepoFile(t, "go.mod"))
	if m == nil {
		t.Fatal("go.mod: no go directive")
	}
	return m[1]
}

// TestDockerfile checks the Dockerfile against the repository, since no
// image can be built here: what it copies exists and is in the build
// context, it builds with `make build` on the Go of go.mod, it ships the
// Makefile's binaries, and it runs the exporter as a non-root user.
func TestDockerfile(t *testing.T) {
	instructions := parseDockerfile(readRepoFile(t, "Dockerfile"))
	all := stages(instructions)
	if len(all) < 2 {
		t.Fatalf("Dockerfile: %d stages, want a builder stage and a final stage", len(all))
	}
	builder, final := all[0], all[len(all)-1]
	ignore := parseDockerignore(t, readRepoFile(t, ".dockerignore"))

	t.Run("builder uses the Go of go.mod", func(t *testing.T) {
		m := regexp.MustCompile(`^(?:docker\.io/(?:library/)?)?golang:(\d+\.\d+)(?:[.-].*)?$`).FindStringSubmatch(builder.image)
		if m == nil {
			t.Fatalf("builder image %q is not golang:<major.minor>", builder.image)
		}
		if want := goDirective(t); m[1] != want {
			t.Errorf("builder image %s is Go %s, go.mod says go %s", builder.image, m[1], want)
		}
		if builder.name == "" {
			t.Errorf("builder stage has no name for COPY --from")
		}
	})

	t.Run("builder runs make build", func(t *testing.T) {
		found := false
		for _, in := range builder.body {
			if in.command == "RUN" && regexp.MustCompile(`(^|\s)make build(\s|$)`).MatchString(in.args) {
				found = true
			}
		}
		if !found {
			t.Error("no RUN make build in the builder stage: the binaries would not carry the Makefile's version ldflags")
		}
	})

	t.Run("copied paths exist and are in the build context", func(t *testing.T) {
		n := 0
		for _, s := range all {
			for _, in := range s.body {
				if in.command == "ADD" {
					t.Errorf("line %d: ADD; use COPY (ADD fetches URLs and unpacks archives)", in.line)
				}
				if in.command != "COPY" {
					continue
				}
				from, sources, _ := copyArgs(in.args)
				if from != "" {
					continue
				}
				for _, source := range sources {
					n++
					matches, err := filepath.Glob(filepath.Join(repoRoot, source))
					if err != nil || len(matches) == 0 {
						t.Errorf("line %d: COPY %s: no such path in the repository", in.line, source)
					}
					if source != "." && ignore.excludes(path.Clean(source)) {
						t.Errorf("line %d: COPY %s: excluded by .dockerignore", in.line, source)
					}
				}
			}
		}
		if n == 0 {
			t.Error("no COPY from the build context")
		}
	})

	t.Run(".dockerignore keeps what make build compiles", func(t *testing.T) {
		needed := []string{"go.mod", "go.sum", "VERSION", "Makefile"}
		for _, binary := range makefileBinaries(t) {
			needed = append(needed, packageFiles(t, "./cmd/"+binary)...)
		}
		for _, file := range needed {
			if ignore.excludes(file) {
				t.Errorf(".dockerignore excludes %s, which make build needs", file)
			}
		}
		for _, file := range []string{".git", ".cache", "bin"} {
			if !ignore.excludes(file) {
				t.Errorf(".dockerignore does not exclude %s: a big or machine-specific build context", file)
			}
		}
	})

	t.Run("final image ships the Makefile's binaries", func(t *testing.T) {
		binaries := makefileBinaries(t)
		var shipped []string
		for _, in := range final.body {
			if in.command != "COPY" {
				continue
			}
			from, sources, _ := copyArgs(in.args)
			if from != builder.name {
				t.Errorf("line %d: final stage copies from %q, want only the builder's output", in.line, from)
				continue
			}
			for _, source := range sources {
				name, ok := strings.CutPrefix(source, path.Join(builder.workdir, "bin")+"/")
				if !ok {
					t.Errorf("line %d: %s is not in %s/bin, where make build writes", in.line, source, builder.workdir)
					continue
				}
				shipped = append(shipped, name)
			}
		}
		for _, name := range shipped {
			if !slices.Contains(binaries, name) {
				t.Errorf("the image ships %s, which the Makefile's build does not build (BINARIES = %v): docker build would fail", name, binaries)
			}
			if _, err := os.Stat(filepath.Join(repoRoot, "cmd", name, "main.go")); err != nil {
				t.Errorf("the image ships %s: no cmd/%s/main.go", name, name)
			}
		}
		for _, want := range []string{"kube-spread-exporter", "check_kube_spread"} {
			if !slices.Contains(shipped, want) {
				t.Errorf("the image does not ship %s (it ships %v)", want, shipped)
			}
		}
	})

	t.Run("final image is minimal and runs the exporter as non-root", func(t *testing.T) {
		if final.image != "scratch" && !regexp.MustCompile(`^gcr\.io/distroless/static(-debian\d+)?:nonroot$`).MatchString(final.image) {
			t.Errorf("final image %s, want gcr.io/distroless/static-debian12:nonroot or scratch", final.image)
		}
		user, entrypoint, exposed := "", "", []string{}
		for _, in := range final.body {
			switch in.command {
			case "USER":
				user = in.args
			case "ENTRYPOINT":
				entrypoint = in.args
			case "EXPOSE":
				exposed = append(exposed, strings.Fields(in.args)...)
			}
		}
		uid, _, _ := strings.Cut(user, ":")
		if n, err := strconv.Atoi(uid); err != nil || n == 0 {
			t.Errorf("USER %q: want a numeric non-root user (Kubernetes can verify runAsNonRoot only for a numeric one)", user)
		}
		var argv []string
		if err := json.Unmarshal([]byte(entrypoint), &argv); err != nil || len(argv) == 0 {
			t.Fatalf("ENTRYPOINT %s: not exec form (a JSON array): signals would go to a shell, and distroless has none", entrypoint)
		}
		name := path.Base(argv[0])
		if _, err := os.Stat(filepath.Join(repoRoot, "cmd", name, "main.go")); err != nil {
			t.Errorf("ENTRYPOINT %s: no cmd/%s", argv[0], name)
		}
		if name != "kube-spread-exporter" {
			t.Errorf("ENTRYPOINT runs %s, want kube-spread-exporter", name)
		}
		port := regexp.MustCompile(`defaultAddress\s*=\s*":(\d+)"`).FindStringSubmatch(readRepoFile(t, "cmd/kube-spread-exporter/main.go"))
		if port == nil {
			t.Fatal("cmd/kube-spread-exporter/main.go: no defaultAddress")
		}
		if !slices.Contains(exposed, port[1]) && !slices.Contains(exposed, port[1]+"/tcp") {
			t.Errorf("EXPOSE %v, want the exporter's default port %s", exposed, port[1])
		}
	})
}

// packageFiles lists, relative to the repository, the Go and embedded
// files of the module's own packages that pkg depends on.
func packageFiles(t *testing.T, pkg string) []string {
	t.Helper()
	cmd := exec.Command("go", "list", "-deps", "-f", `{{if not .Standard}}{{$dir := .Dir}}{{range .GoFiles}}{{$dir}}/{{.}}{{"\n"}}{{end}}{{range .EmbedFiles}}{{$dir}}/{{.}}{{"\n"}}{{end}}{{end}}`, pkg)
	cmd.Dir = repoRoot
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list -deps %s: %v", pkg, err)
	}
	root, err := filepath.Abs(repoRoot)
	if err != nil {
		t.Fatal(err)
	}
	var files []string
	for _, file := range strings.Fields(string(out)) {
		rel, err := filepath.Rel(root, file)
		if err != nil || strings.HasPrefix(rel, "..") {
			continue // a dependency from the module cache
		}
		files = append(files, filepath.ToSlash(rel))
	}
	if len(files) == 0 {
		t.Fatalf("go list -deps %s: no file of this repository", pkg)
	}
	return files
}

// dockerignore is the list of exclusion patterns of a .dockerignore.
type dockerignore []string

// parseDockerignore accepts the patterns this project uses: no "!"
// exceptions and no "**", so that excludes below is exact.
func parseDockerignore(t *testing.T, text string) dockerignore {
	t.Helper()
	var patterns dockerignore
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if strings.HasPrefix(line, "!") || strings.Contains(line, "**") {
			t.Fatalf(".dockerignore %q: this test understands no ! or ** patterns; extend it first", line)
		}
		patterns = append(patterns, path.Clean(strings.TrimPrefix(line, "/")))
	}
	return patterns
}

// excludes reports whether a path of the repository, or a directory above
// it, matches a pattern (Docker matches patterns with filepath.Match
// semantics against the path from the context's root).
func (d dockerignore) excludes(file string) bool {
	for p := file; p != "." && p != "/"; p = path.Dir(p) {
		for _, pattern := range d {
			if ok, _ := path.Match(pattern, p); ok {
				return true
			}
		}
	}
	return false
}

// TestDockerignoreMatcher pins the matcher the Dockerfile test relies on.
func TestDockerignoreMatcher(t *testing.T) {
	d := dockerignore{".git", "docs", "*.md"}
	for file, want := range map[string]bool{
		".git/HEAD": true, "docs/metrics.md": true, "README.md": true,
		"cluster/watcher.go": false, "go.mod": false, "cluster/README.md": false,
	} {
		if got := d.excludes(file); got != want {
			t.Errorf("excludes(%s) = %v, want %v", file, got, want)
		}
	}
}
