package npy_test

import (
	"bytes"
	"errors"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/facesearch/facesearch/internal/npy"
)

// numpyPython returns a Python interpreter that can import numpy, or skips:
// the cross-check is optional because CI machines may not have numpy.
// NPY_PYTHON names one explicitly; Debian's python3-numpy installs for
// /usr/bin/python3, which may not be the python3 first on PATH.
func numpyPython(t *testing.T) string {
	t.Helper()
	candidates := []string{os.Getenv("NPY_PYTHON"), "python3", "/usr/bin/python3"}
	for _, c := range candidates {
		if c == "" {
			continue
		}
		if err := exec.Command(c, "-c", "import numpy").Run(); err == nil {
			return c
		}
	}
	t.Skip("no python3 with numpy; install python3-numpy or set NPY_PYTHON to run the cross-check")
	return ""
}

// crossCheck has numpy read our files, check them, and write its own in
// every accepted form plus some rejected ones.
const crossCheck = `
import sys
import numpy as np
from numpy.lib import format as F
d = sys.argv[1]
v = np.load(d + '/go_vector.npy')
m = np.load(d + '/go_matrix.npy')
assert v.dtype == np.dtype('<f4') and v.shape == (5,), (v.dtype, v.shape)
assert m.dtype == np.dtype('<f4') and m.shape == (3, 5), (m.dtype, m.shape)
assert np.array_equal(v, m[0]), (v, m[0])
assert m.flags.c_contiguous
np.save(d + '/np_vector_f4.npy', v)
np.save(d + '/np_matrix_f4.npy', m)
np.save(d + '/np_vector_f8.npy', v.astype('<f8'))
np.save(d + '/np_matrix_f8.npy', m.astype('<f8'))
for ver in (2, 3):
    with open(d + '/np_matrix_v%d.npy' % ver, 'wb') as f:
        F.write_array(f, m, version=(ver, 0))
np.save(d + '/bad_fortran.npy', np.asfortranarray(m))
np.save(d + '/bad_big_endian.npy', m.astype('>f4'))
np.save(d + '/bad_int32.npy', m.astype('<i4'))
np.save(d + '/bad_float16.npy', m.astype('<f2'))
np.save(d + '/bad_3d.npy', m.reshape(3, 5, 1))
np.save(d + '/bad_0d.npy', np.float32(1.5))
np.save(d + '/bad_empty.npy', np.zeros((0, 5), dtype='<f4'))
np.save(d + '/bad_structured.npy', np.zeros(3, dtype=[('x', '<f4')]))
print('ok')
`

func TestNumpyCrossCheck(t *testing.T) {
	python := numpyPython(t)
	dir := t.TempDir()
	m := [][]float32{
		{1, -0.5, float32(math.Copysign(0, -1)), math.SmallestNonzeroFloat32, math.MaxFloat32},
		{0.1, 0.2, 0.3, 0.4, 0.5},
		{float32(math.Inf(1)), float32(math.Inf(-1)), 1e-20, -3, 42},
	}
	var buf bytes.Buffer
	if err := npy.Encode(&buf, m, false); err != nil {
		t.Fatal(err)
	}
	write := func(name string, b []byte) {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("go_matrix.npy", buf.Bytes())
	write("go_vector.npy", npy.EncodeVector(m[0]))

	out, err := exec.Command(python, "-c", crossCheck, dir).CombinedOutput()
	if err != nil {
		t.Fatalf("numpy rejected our files: %v\n%s", err, out)
	}

	read := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	for name, want := range map[string][][]float32{
		"np_vector_f4.npy": m[:1],
		"np_vector_f8.npy": m[:1],
		"np_matrix_f4.npy": m,
		"np_matrix_f8.npy": m,
		"np_matrix_v2.npy": m,
		"np_matrix_v3.npy": m,
	} {
		got, dim, err := npy.Decode(read(name))
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if dim != 5 || !sameBits(got, want) {
			t.Errorf("%s: got %v (dim %d), want %v", name, got, dim, want)
		}
	}
	for _, name := range []string{
		"bad_fortran.npy", "bad_big_endian.npy", "bad_int32.npy", "bad_float16.npy",
		"bad_3d.npy", "bad_0d.npy", "bad_empty.npy", "bad_structured.npy",
	} {
		if _, _, err := npy.Decode(read(name)); !errors.Is(err, npy.ErrFormat) {
			t.Errorf("%s: err = %v, want ErrFormat", name, err)
		} else {
			t.Logf("%s: %v", name, err)
		}
	}
}
