package records

import (
	"bufio"
	"fmt"
	"io"
	"iter"
	"os"
	"path/filepath"
	"strings"

	"github.com/facesearch/facesearch/engine"
	"github.com/facesearch/facesearch/internal/npy"
)

// SidecarPath is the sidecar of a .npy file: the same path with .ids for
// .npy, if it exists.
func SidecarPath(npyPath string) string {
	p := strings.TrimSuffix(npyPath, filepath.Ext(npyPath)) + ".ids"
	if _, err := os.Stat(p); err == nil {
		return p
	}
	return ""
}

// ReadNPY streams the rows of a .npy file, with IDs from its sidecar (if
// sidecar is not empty).
func ReadNPY(name string, r io.Reader, sidecar string) iter.Seq2[Sourced, error] {
	return func(yield func(Sourced, error) bool) {
		nr, err := npy.NewReader(r)
		if err != nil {
			yield(Sourced{}, &Error{Pos{File: name, N: 1, Row: true}, err})
			return
		}
		n, dim := nr.Shape()
		var ids *bufio.Scanner
		if sidecar != "" {
			f, err := os.Open(sidecar)
			if err != nil {
				yield(Sourced{}, err)
				return
			}
			defer f.Close()
			ids = bufio.NewScanner(f)
			ids.Buffer(make([]byte, 0, 4096), 1<<20)
		}
		defaultExt := ""
		if base := strings.TrimSuffix(filepath.Base(name), filepath.Ext(name)); sidecar == "" && n == 1 && validID(base, 255) {
			defaultExt = base
		}
		for row := 1; row <= n; row++ {
			pos := Pos{File: name, N: row, Row: true}
			vec := make([]float32, dim)
			if err := nr.Next(vec); err != nil {
				yield(Sourced{}, &Error{pos, err})
				return
			}
			rec := engine.ImportRecord{Vector: vec, ExternalImageId: defaultExt}
			if boxes := nr.Boxes(); boxes != nil {
				b := boxes[row-1]
				rec.BoundingBox = &engine.BoundingBox{Width: float32(b.Width), Height: float32(b.Height), Left: float32(b.Left), Top: float32(b.Top)}
			}
			if ids != nil {
				if !ids.Scan() {
					err := ids.Err()
					if err == nil {
						err = fmt.Errorf("%s has %d lines, fewer than the %d rows of %s", sidecar, row-1, n, name)
					}
					yield(Sourced{}, &Error{pos, err})
					return
				}
				if err := parseSidecarLine(ids.Text(), &rec); err != nil {
					yield(Sourced{}, &Error{Pos{File: sidecar, N: row}, err})
					return
				}
			}
			if !yield(Sourced{pos, rec}, nil) {
				return
			}
		}
		if err := nr.Next(make([]float32, dim)); err != io.EOF {
			yield(Sourced{}, &Error{Pos{File: name, N: n, Row: true}, err})
			return
		}
		if ids != nil {
			for line := n + 1; ids.Scan(); line++ {
				if strings.TrimSpace(ids.Text()) != "" {
					yield(Sourced{}, &Error{Pos{File: sidecar, N: line}, fmt.Errorf("more lines than the %d rows of %s", n, name)})
					return
				}
			}
		}
	}
}

// parseSidecarLine reads "external_image_id[\tuser_id[\tface_id[\timage_id]]]".
func parseSidecarLine(line string, rec *engine.ImportRecord) error {
	line = strings.TrimRight(line, "\r")
	if line == "" {
		return nil
	}
	f := strings.Split(line, "\t")
	if len(f) > 4 {
		return fmt.Errorf("%d tab-separated fields; want at most 4: external_image_id, user_id, face_id, image_id", len(f))
	}
	f = append(f, "", "", "")
	rec.ExternalImageId, rec.UserId, rec.FaceId, rec.ImageId = f[0], f[1], f[2], f[3]
	return nil
}

// SidecarLine is parseSidecarLine's inverse, without trailing empty fields.
func SidecarLine(r engine.ImportRecord) string {
	return strings.TrimRight(strings.Join([]string{r.ExternalImageId, r.UserId, r.FaceId, r.ImageId}, "\t"), "\t")
}
