package main

import (
	"archive/tar"
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

func TestBuildWritesImportableImage(t *testing.T) {
	dir := t.TempDir()
	rootfs := filepath.Join(dir, "rootfs")
	mustWrite(t, filepath.Join(rootfs, "bin", "tool"), "tool", 0o755)
	mustWrite(t, filepath.Join(rootfs, "etc", "config"), "from rootfs", 0o644)
	if err := os.Symlink("tool", filepath.Join(rootfs, "bin", "alias")); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(filepath.Join(rootfs, "bin", "tool"), filepath.Join(rootfs, "bin", "hard")); err != nil {
		t.Fatal(err)
	}
	override := filepath.Join(dir, "override")
	mustWrite(t, override, "from -file", 0o600)
	out := filepath.Join(dir, "img.tar")

	opts, err := parseFlags([]string{
		"-out", out, "-tag", "localhost/test/img:1", "-rootfs", rootfs,
		"-file", override + ":/etc/config:0640", "-file", override + ":/opt/new/file",
		"-entrypoint", `["/bin/tool"]`, "-cmd", `["a","b"]`, "-env", "K=V", "-user", "101:103",
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := build(opts); err != nil {
		t.Fatal(err)
	}

	tag, err := name.NewTag("localhost/test/img:1")
	if err != nil {
		t.Fatal(err)
	}
	img, err := tarball.ImageFromPath(out, &tag)
	if err != nil {
		t.Fatalf("reading the written image back: %v", err)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.OS != "linux" || cfg.Architecture != "amd64" {
		t.Errorf("platform = %s/%s, want linux/amd64", cfg.OS, cfg.Architecture)
	}
	if !slices.Equal(cfg.Config.Entrypoint, []string{"/bin/tool"}) || !slices.Equal(cfg.Config.Cmd, []string{"a", "b"}) {
		t.Errorf("entrypoint %q cmd %q", cfg.Config.Entrypoint, cfg.Config.Cmd)
	}
	if cfg.Config.User != "101:103" || !slices.Contains(cfg.Config.Env, "K=V") {
		t.Errorf("user %q env %q", cfg.Config.User, cfg.Config.Env)
	}

	layers, err := img.Layers()
	if err != nil || len(layers) != 1 {
		t.Fatalf("layers = %d, %v; want exactly one", len(layers), err)
	}
	entries := readLayer(t, layers[0])
	if e := entries["etc/config"]; e.body != "from -file" || e.mode != 0o640 {
		t.Errorf("etc/config = %q mode %o; want the -file override with mode 640", e.body, e.mode)
	}
	if e := entries["bin/alias"]; e.typ != tar.TypeSymlink || e.link != "tool" {
		t.Errorf("bin/alias = type %c link %q; want a symlink to tool", e.typ, e.link)
	}
	tool, hard := entries["bin/tool"], entries["bin/hard"]
	if !(tool.typ == tar.TypeReg && hard.typ == tar.TypeLink && hard.link == "bin/tool") &&
		!(hard.typ == tar.TypeReg && tool.typ == tar.TypeLink && tool.link == "bin/hard") {
		t.Errorf("bin/tool %c and bin/hard %c %q: want one file and one hard link to it", tool.typ, hard.typ, hard.link)
	}
	if _, ok := entries["opt/new/"]; !ok {
		t.Errorf("parent directory opt/new/ of a -file was not created; entries: %v", keys(entries))
	}
	if e := entries["opt/new/file"]; e.body != "from -file" || e.mode != 0o755 {
		t.Errorf("opt/new/file = %q mode %o; want default mode 755", e.body, e.mode)
	}
}

func TestParseFlagsRejectsBadInput(t *testing.T) {
	for _, args := range [][]string{
		{"-tag", "x:1", "-rootfs", "/"},
		{"-out", "o", "-tag", "x:1"},
		{"-out", "o", "-tag", "x:1", "-file", "relative-dst:dst"},
		{"-out", "o", "-tag", "x:1", "-file", "a:/b:99z"},
		{"-out", "o", "-tag", "x:1", "-rootfs", "/", "-entrypoint", "/bin/sh"},
	} {
		if _, err := parseFlags(args); err == nil {
			t.Errorf("parseFlags(%q) succeeded, want an error", args)
		}
	}
}

type entry struct {
	typ        byte
	mode       int64
	body, link string
}

func readLayer(t *testing.T, layer interface {
	Uncompressed() (io.ReadCloser, error)
}) map[string]entry {
	t.Helper()
	rc, err := layer.Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	entries := map[string]entry{}
	tr := tar.NewReader(rc)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return entries
		}
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		entries[hdr.Name] = entry{typ: hdr.Typeflag, mode: hdr.Mode & 0o7777, body: string(body), link: hdr.Linkname}
	}
}

func keys(m map[string]entry) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func mustWrite(t *testing.T, path, body string, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(body), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}
