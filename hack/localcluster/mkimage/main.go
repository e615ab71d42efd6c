// Command mkimage writes a single-layer container image as a docker-style
// tarball (the format `ctr images import` reads) from a root filesystem
// directory and/or single files, without a docker engine or a registry.
//
// Usage:
//
//	mkimage -out img.tar -tag localhost/x/y:1 [-rootfs DIR] [-file SRC:DST[:MODE]]...
//	        [-entrypoint '["/bin/x"]'] [-cmd '["arg"]'] [-env K=V]... [-user U] [-workdir D]
package main

import (
	"archive/tar"
	"compress/gzip"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// listFlag collects a flag given several times.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

// fileSpec is one host file placed into the image.
type fileSpec struct {
	src, dst string
	mode     fs.FileMode
}

// options is everything one image needs.
type options struct {
	out, tag, rootfs, user, workdir string
	entrypoint, cmd                 []string
	env                             []string
	files                           []fileSpec
}

func main() {
	opts, err := parseFlags(os.Args[1:])
	if err == nil {
		err = build(opts)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "mkimage:", err)
		os.Exit(1)
	}
}

func parseFlags(args []string) (options, error) {
	var opts options
	var files, env listFlag
	var entrypoint, cmd string
	fl := flag.NewFlagSet("mkimage", flag.ContinueOnError)
	fl.StringVar(&opts.out, "out", "", "tarball to write")
	fl.StringVar(&opts.tag, "tag", "", "image reference, e.g. localhost/workqueue/busybox:1")
	fl.StringVar(&opts.rootfs, "rootfs", "", "directory copied as the image's root filesystem")
	fl.Var(&files, "file", "SRC:DST[:MODE] host file placed at DST (octal MODE, default 0755)")
	fl.StringVar(&entrypoint, "entrypoint", "", "entrypoint as a JSON array")
	fl.StringVar(&cmd, "cmd", "", "cmd as a JSON array")
	fl.Var(&env, "env", "K=V environment variable (repeatable)")
	fl.StringVar(&opts.user, "user", "", "user the container runs as")
	fl.StringVar(&opts.workdir, "workdir", "", "working directory")
	if err := fl.Parse(args); err != nil {
		return opts, err
	}
	if opts.out == "" || opts.tag == "" {
		return opts, errors.New("-out and -tag are required")
	}
	if opts.rootfs == "" && len(files) == 0 {
		return opts, errors.New("give -rootfs or at least one -file")
	}
	for _, raw := range []struct {
		text string
		into *[]string
		flag string
	}{{entrypoint, &opts.entrypoint, "-entrypoint"}, {cmd, &opts.cmd, "-cmd"}} {
		if raw.text == "" {
			continue
		}
		if err := json.Unmarshal([]byte(raw.text), raw.into); err != nil {
			return opts, fmt.Errorf("%s must be a JSON array of strings: %w", raw.flag, err)
		}
	}
	for _, f := range files {
		spec, err := parseFileSpec(f)
		if err != nil {
			return opts, err
		}
		opts.files = append(opts.files, spec)
	}
	opts.env = env
	return opts, nil
}

func parseFileSpec(s string) (fileSpec, error) {
	parts := strings.Split(s, ":")
	if len(parts) < 2 || len(parts) > 3 || parts[0] == "" || !strings.HasPrefix(parts[1], "/") {
		return fileSpec{}, fmt.Errorf("-file %q: want SRC:/DST[:MODE]", s)
	}
	spec := fileSpec{src: parts[0], dst: parts[1], mode: 0o755}
	if len(parts) == 3 {
		m, err := strconv.ParseUint(parts[2], 8, 32)
		if err != nil {
			return fileSpec{}, fmt.Errorf("-file %q: mode: %w", s, err)
		}
		spec.mode = fs.FileMode(m)
	}
	return spec, nil
}

func build(opts options) error {
	ref, err := name.NewTag(opts.tag)
	if err != nil {
		return fmt.Errorf("image tag %q: %w", opts.tag, err)
	}
	layerPath := opts.out + ".layer.tmp"
	defer os.Remove(layerPath)
	if err := writeLayerTar(layerPath, opts); err != nil {
		return err
	}
	// Fast compression: these images never leave the machine, and import
	// time matters more than size.
	layer, err := tarball.LayerFromFile(layerPath, tarball.WithCompressionLevel(gzip.BestSpeed))
	if err != nil {
		return fmt.Errorf("reading layer: %w", err)
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		return fmt.Errorf("adding layer: %w", err)
	}
	cfgFile, err := img.ConfigFile()
	if err != nil {
		return fmt.Errorf("reading config: %w", err)
	}
	cfgFile = cfgFile.DeepCopy()
	cfgFile.OS = "linux"
	cfgFile.Architecture = "amd64"
	cfgFile.Config = v1.Config{
		Entrypoint: opts.entrypoint,
		Cmd:        opts.cmd,
		Env:        append([]string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}, opts.env...),
		User:       opts.user,
		WorkingDir: opts.workdir,
	}
	img, err = mutate.ConfigFile(img, cfgFile)
	if err != nil {
		return fmt.Errorf("setting config: %w", err)
	}
	tmp := opts.out + ".tmp"
	if err := tarball.WriteToFile(tmp, ref, img); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("writing %s: %w", opts.out, err)
	}
	if err := os.Rename(tmp, opts.out); err != nil {
		return fmt.Errorf("writing %s: %w", opts.out, err)
	}
	return nil
}

// writeLayerTar writes the uncompressed layer: the rootfs (if any) first,
// then the single files, which win over rootfs entries of the same name.
func writeLayerTar(layerPath string, opts options) (err error) {
	f, err := os.Create(layerPath)
	if err != nil {
		return fmt.Errorf("creating layer: %w", err)
	}
	defer func() {
		if cerr := f.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("writing layer: %w", cerr)
		}
	}()
	tw := tar.NewWriter(f)
	override := map[string]bool{}
	for _, spec := range opts.files {
		override[strings.TrimPrefix(path.Clean(spec.dst), "/")] = true
	}
	written := map[string]bool{}
	if opts.rootfs != "" {
		if err := addRootfs(tw, opts.rootfs, override, written); err != nil {
			return err
		}
	}
	for _, spec := range opts.files {
		if err := addFile(tw, spec, written); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("writing layer: %w", err)
	}
	return nil
}

// addRootfs copies a directory tree, keeping owners, modes, symlinks and
// hard links. Device nodes, fifos and sockets are skipped: the runtime
// provides /dev.
func addRootfs(tw *tar.Writer, root string, override, written map[string]bool) error {
	type inodeKey struct{ dev, ino uint64 }
	firstPath := map[inodeKey]string{}
	return filepath.WalkDir(root, func(p string, d fs.DirEntry, walkErr error) error {
		if walkErr != nil {
			return fmt.Errorf("reading rootfs: %w", walkErr)
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return fmt.Errorf("reading rootfs: %w", err)
		}
		if rel == "." || override[filepath.ToSlash(rel)] {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return fmt.Errorf("reading rootfs: %w", err)
		}
		mode := info.Mode()
		if mode&(fs.ModeDevice|fs.ModeCharDevice|fs.ModeNamedPipe|fs.ModeSocket) != 0 {
			return nil
		}
		link := ""
		if mode&fs.ModeSymlink != 0 {
			if link, err = os.Readlink(p); err != nil {
				return fmt.Errorf("reading rootfs: %w", err)
			}
		}
		hdr, err := tar.FileInfoHeader(info, link)
		if err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		hdr.Name = filepath.ToSlash(rel)
		if d.IsDir() {
			hdr.Name += "/"
		}
		hdr.Uname, hdr.Gname = "", ""
		hdr.Format = tar.FormatPAX
		hdr.AccessTime, hdr.ChangeTime = time.Time{}, time.Time{}
		if st, ok := info.Sys().(*syscall.Stat_t); ok && mode.IsRegular() && st.Nlink > 1 {
			key := inodeKey{uint64(st.Dev), st.Ino}
			if first, seen := firstPath[key]; seen {
				hdr.Typeflag = tar.TypeLink
				hdr.Linkname = first
				hdr.Size = 0
			} else {
				firstPath[key] = hdr.Name
			}
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return fmt.Errorf("writing %s: %w", hdr.Name, err)
		}
		written[strings.TrimSuffix(hdr.Name, "/")] = true
		if hdr.Typeflag != tar.TypeReg {
			return nil
		}
		return copyInto(tw, p)
	})
}

// addFile places one host file, creating its parent directories.
func addFile(tw *tar.Writer, spec fileSpec, written map[string]bool) error {
	info, err := os.Stat(spec.src)
	if err != nil {
		return fmt.Errorf("-file %s: %w", spec.src, err)
	}
	dst := strings.TrimPrefix(path.Clean(spec.dst), "/")
	var parents []string
	for dir := path.Dir(dst); dir != "." && !written[dir]; dir = path.Dir(dir) {
		parents = append(parents, dir)
	}
	sort.Strings(parents)
	for _, dir := range parents {
		hdr := &tar.Header{Typeflag: tar.TypeDir, Name: dir + "/", Mode: 0o755, Format: tar.FormatPAX}
		if err := tw.WriteHeader(hdr); err != nil {
			return fmt.Errorf("writing %s: %w", dir, err)
		}
		written[dir] = true
	}
	hdr := &tar.Header{
		Typeflag: tar.TypeReg, Name: dst, Mode: int64(spec.mode), Size: info.Size(),
		ModTime: info.ModTime(), Format: tar.FormatPAX,
	}
	if err := tw.WriteHeader(hdr); err != nil {
		return fmt.Errorf("writing %s: %w", dst, err)
	}
	written[dst] = true
	return copyInto(tw, spec.src)
}

func copyInto(w io.Writer, src string) error {
	f, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("reading %s: %w", src, err)
	}
	defer f.Close()
	if _, err := io.Copy(w, f); err != nil {
		return fmt.Errorf("copying %s: %w", src, err)
	}
	return nil
}
