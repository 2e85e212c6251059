package npy_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"runtime"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/facesearch/facesearch/internal/npy"
)

// npyFile builds a .npy file by hand: magic, version major.0, a length field
// of the version's width, the header text as given (no padding added) and data.
func npyFile(major byte, dict string, data []byte) []byte {
	b := append([]byte("\x93NUMPY"), major, 0)
	if major == 1 {
		b = binary.LittleEndian.AppendUint16(b, uint16(len(dict)))
	} else {
		b = binary.LittleEndian.AppendUint32(b, uint32(len(dict)))
	}
	b = append(b, dict...)
	return append(b, data...)
}

func f4(vals ...float32) []byte {
	var b []byte
	for _, v := range vals {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(v))
	}
	return b
}

func f8(vals ...float64) []byte {
	var b []byte
	for _, v := range vals {
		b = binary.LittleEndian.AppendUint64(b, math.Float64bits(v))
	}
	return b
}

func dictFor(descr, shape string) string {
	return fmt.Sprintf("{'descr': '%s', 'fortran_order': False, 'shape': %s, }\n", descr, shape)
}

// sameBits reports whether got and want hold bit-identical float32 rows.
func sameBits(got, want [][]float32) bool {
	if len(got) != len(want) {
		return false
	}
	for i := range got {
		if len(got[i]) != len(want[i]) {
			return false
		}
		for j := range got[i] {
			if math.Float32bits(got[i][j]) != math.Float32bits(want[i][j]) {
				return false
			}
		}
	}
	return true
}

func TestDecodeAccepts(t *testing.T) {
	row := []float32{1, -2.5, 0.125}
	want1 := [][]float32{row}
	want2 := [][]float32{{1, 2, 3}, {4, 5, 6}}
	tests := []struct {
		name string
		in   []byte
		want [][]float32
	}{
		{"f4 1-D", npyFile(1, dictFor("<f4", "(3,)"), f4(row...)), want1},
		{"f4 2-D", npyFile(1, dictFor("<f4", "(2, 3)"), f4(1, 2, 3, 4, 5, 6)), want2},
		{"f8 1-D", npyFile(1, dictFor("<f8", "(3,)"), f8(1, -2.5, 0.125)), want1},
		{"f8 2-D", npyFile(1, dictFor("<f8", "(2, 3)"), f8(1, 2, 3, 4, 5, 6)), want2},
		{"one row 2-D", npyFile(1, dictFor("<f4", "(1, 3)"), f4(row...)), want1},
		{"version 2.0", npyFile(2, dictFor("<f4", "(2, 3)"), f4(1, 2, 3, 4, 5, 6)), want2},
		{"version 3.0", npyFile(3, dictFor("<f8", "(3,)"), f8(1, -2.5, 0.125)), want1},
		{"Encode output", npy.EncodeVector(row), want1},
		{"numpy padding", npyFile(1, strings.TrimSuffix(dictFor("<f4", "(3,)"), "\n")+strings.Repeat(" ", 60)+"\n", f4(row...)), want1},
		{"no trailing comma or newline", npyFile(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (3,)}", f4(row...)), want1},
		{"keys reordered", npyFile(1, "{'shape': (3,), 'fortran_order': False, 'descr': '<f4'}", f4(row...)), want1},
		{"double quotes", npyFile(1, `{"descr": "<f4", "fortran_order": False, "shape": (3,)}`, f4(row...)), want1},
		{"odd whitespace", npyFile(1, "\t{ 'descr' :'<f4' ,\n'fortran_order':False,'shape':( 2 ,3 ) ,\r\n}  \n", f4(1, 2, 3, 4, 5, 6)), want2},
		{"python 2 longs", npyFile(1, dictFor("<f4", "(2L, 3L)"), f4(1, 2, 3, 4, 5, 6)), want2},
		{"parenthesized tuple", npyFile(1, dictFor("<f4", "((3,))"), f4(row...)), want1},
		{"plus sign", npyFile(1, dictFor("<f4", "(+2, 3)"), f4(1, 2, 3, 4, 5, 6)), want2},
		{"underscore in integer", npyFile(1, dictFor("<f4", "(1_0,)"), make([]byte, 40)), [][]float32{make([]float32, 10)}},
		{"max dim", npyFile(1, dictFor("<f4", "(4096,)"), make([]byte, 4*4096)), [][]float32{make([]float32, 4096)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rows, dim, err := npy.Decode(tt.in)
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if dim != len(tt.want[0]) {
				t.Errorf("dim = %d, want %d", dim, len(tt.want[0]))
			}
			if !sameBits(rows, tt.want) {
				t.Errorf("rows = %v, want %v", rows, tt.want)
			}
		})
	}
}

// rejections lists one input per rejection reason. hint is a fragment the
// message must contain, so each reason stays specific enough to act on;
// the error's identity is checked with errors.Is.
var rejections = []struct {
	name string
	in   []byte
	hint string
}{
	{"empty", nil, "not a .npy file"},
	{"bad magic", []byte("PK\x03\x04 this is a zip file"), "not a .npy file"},
	{"raw floats", f4(1, 2, 3, 4), "not a .npy file"},
	{"magic only", []byte("\x93NUM"), "truncated header"},
	{"no length", []byte("\x93NUMPY\x01\x00\x10"), "truncated header"},
	{"version 4.0", npyFile(4, dictFor("<f4", "(3,)"), f4(1, 2, 3)), "version 4.0"},
	{"version 1.1", append([]byte("\x93NUMPY\x01\x01"), npyFile(1, dictFor("<f4", "(3,)"), f4(1, 2, 3))[8:]...), "version 1.1"},
	{"header cut short", npyFile(1, dictFor("<f4", "(3,)"), nil)[:30], "truncated header"},
	{"header length absurd", append([]byte("\x93NUMPY\x02\x00\xff\xff\xff\xff"), dictFor("<f4", "(3,)")...), "exceeds the limit"},
	{"not a dict", npyFile(1, "[1, 2, 3]", nil), "not a valid Python dict"},
	{"empty header", npyFile(1, "", nil), "not a valid Python dict"},
	{"unclosed dict", npyFile(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (3,)", f4(1, 2, 3)), "not a valid Python dict"},
	{"missing colon", npyFile(1, "{'descr' '<f4', 'fortran_order': False, 'shape': (3,)}", f4(1, 2, 3)), "want ':'"},
	{"missing comma", npyFile(1, "{'descr': '<f4' 'fortran_order': False, 'shape': (3,)}", f4(1, 2, 3)), "want ','"},
	{"double comma", npyFile(1, "{'descr': '<f4',, 'fortran_order': False, 'shape': (3,)}", f4(1, 2, 3)), "not a valid Python dict"},
	{"unterminated string", npyFile(1, "{'descr: '<f4', 'fortran_order': False, 'shape': (3,)}", f4(1, 2, 3)), "not a valid Python dict"},
	{"lowercase false", npyFile(1, "{'descr': '<f4', 'fortran_order': false, 'shape': (3,)}", f4(1, 2, 3)), "unknown name"},
	{"text after dict", npyFile(1, dictFor("<f4", "(3,)")+"x", f4(1, 2, 3)), "after the closing"},
	{"deep nesting", npyFile(1, "{'descr': '<f4', 'fortran_order': False, 'shape': "+strings.Repeat("(", 100)+"3"+strings.Repeat(",)", 100)+"}", f4(1, 2, 3)), "nested too deeply"},
	{"non-string key", npyFile(1, "{1: '<f4', 'fortran_order': False, 'shape': (3,)}", f4(1, 2, 3)), "not a string"},
	{"duplicate key", npyFile(1, "{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (3,)}", f4(1, 2, 3)), "duplicate key"},
	{"missing key", npyFile(1, "{'descr': '<f4', 'shape': (3,)}", f4(1, 2, 3)), "'fortran_order'"},
	{"unknown key", npyFile(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (3,), 'extra': 1}", f4(1, 2, 3)), "'extra'"},
	{"int32", npyFile(1, dictFor("<i4", "(3,)"), f4(1, 2, 3)), "unsupported dtype '<i4'"},
	{"float16", npyFile(1, dictFor("<f2", "(2,)"), f4(1)), "unsupported dtype '<f2'"},
	{"uint8", npyFile(1, dictFor("|u1", "(4,)"), f4(1)), "unsupported dtype '|u1'"},
	{"native order", npyFile(1, dictFor("=f4", "(3,)"), f4(1, 2, 3)), "'=f4'"},
	{"big-endian f4", npyFile(1, dictFor(">f4", "(3,)"), f4(1, 2, 3)), "big-endian"},
	{"big-endian f8", npyFile(1, dictFor(">f8", "(3,)"), f8(1, 2, 3)), "big-endian"},
	{"structured", npyFile(1, "{'descr': [('x', '<f4')], 'fortran_order': False, 'shape': (3,)}", f4(1, 2, 3)), "structured"},
	{"fortran order", npyFile(1, "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2)}", f4(1, 2, 3, 4)), "Fortran"},
	{"fortran order not bool", npyFile(1, "{'descr': '<f4', 'fortran_order': 0, 'shape': (2, 2)}", f4(1, 2, 3, 4)), "want True or False"},
	{"0-d", npyFile(1, dictFor("<f4", "()"), f4(1)), "0-d"},
	{"3-d", npyFile(1, dictFor("<f4", "(1, 2, 2)"), f4(1, 2, 3, 4)), "3 dimensions"},
	{"shape not a tuple", npyFile(1, dictFor("<f4", "(3)"), f4(1, 2, 3)), "not a tuple"},
	{"shape a list", npyFile(1, dictFor("<f4", "[3]"), f4(1, 2, 3)), "not a tuple"},
	{"shape float", npyFile(1, dictFor("<f4", "(3.0,)"), f4(1, 2, 3)), "non-integer dimension"},
	{"shape string", npyFile(1, dictFor("<f4", "('3',)"), f4(1, 2, 3)), "non-integer"},
	{"shape leading zero", npyFile(1, dictFor("<f4", "(03,)"), f4(1, 2, 3)), "leading zero"},
	{"negative", npyFile(1, dictFor("<f4", "(-1, 3)"), f4(1, 2, 3)), "negative"},
	{"d = 0", npyFile(1, dictFor("<f4", "(0,)"), nil), "empty"},
	{"n = 0", npyFile(1, dictFor("<f4", "(0, 3)"), nil), "empty"},
	{"n = 0, d = 0", npyFile(1, dictFor("<f4", "(0, 0)"), nil), "empty"},
	{"2-D d = 0", npyFile(1, dictFor("<f4", "(3, 0)"), nil), "empty"},
	{"d over limit", npyFile(1, dictFor("<f4", "(4097,)"), make([]byte, 4*4097)), "limit of 4096"},
	{"huge integer", npyFile(1, dictFor("<f4", "(99999999999999999999999, 3)"), f4(1, 2, 3)), "too large"},
	{"n*d*8 overflows", npyFile(1, dictFor("<f8", "(9223372036854775807, 4096)"), f8(1, 2, 3)), "truncated"},
	{"hostile n", npyFile(1, dictFor("<f4", "(1000000000000, 512)"), f4(1, 2, 3)), "truncated"},
	{"data short", npyFile(1, dictFor("<f4", "(2, 3)"), f4(1, 2, 3, 4, 5)), "truncated"},
	{"data short by a byte", npyFile(1, dictFor("<f8", "(3,)"), f8(1, 2, 3)[:23]), "truncated"},
	{"no data", npyFile(1, dictFor("<f4", "(3,)"), nil), "truncated"},
	{"trailing bytes", npyFile(1, dictFor("<f4", "(3,)"), append(f4(1, 2, 3), 0)), "unexpected bytes"},
	{"extra row", npyFile(1, dictFor("<f4", "(1, 3)"), f4(1, 2, 3, 4, 5, 6)), "unexpected bytes"},
	{"f8 data under f4 descr", npyFile(1, dictFor("<f4", "(3,)"), f8(1, 2, 3)), "unexpected bytes"},
}

func TestDecodeRejects(t *testing.T) {
	for _, tt := range rejections {
		t.Run(tt.name, func(t *testing.T) {
			rows, dim, err := npy.Decode(tt.in)
			if !errors.Is(err, npy.ErrFormat) {
				t.Fatalf("Decode = %d rows, dim %d, err %v; want ErrFormat", len(rows), dim, err)
			}
			if rows != nil || dim != 0 {
				t.Errorf("Decode returned rows %v, dim %d with an error", rows, dim)
			}
			if !strings.Contains(err.Error(), tt.hint) {
				t.Errorf("message %q does not mention %q", err, tt.hint)
			}
		})
	}
}

func TestDtypeMessageSaysWhatIsAccepted(t *testing.T) {
	_, _, err := npy.Decode(npyFile(1, dictFor("<i4", "(3,)"), f4(1, 2, 3)))
	want := "npy: invalid array: unsupported dtype '<i4': want little-endian float32 ('<f4') or float64 ('<f8'), C order, shape (d,) or (n, d)"
	if err == nil || err.Error() != want {
		t.Errorf("got %v\nwant %s", err, want)
	}
}

// A header claiming a huge shape must be rejected before anything of that
// size is allocated.
func TestDecodeHostileHeaderDoesNotAllocate(t *testing.T) {
	in := npyFile(1, dictFor("<f4", "(4611686018427387903, 4096)"), make([]byte, 4096))
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range 10 {
		if _, _, err := npy.Decode(in); !errors.Is(err, npy.ErrFormat) {
			t.Fatalf("err = %v, want ErrFormat", err)
		}
	}
	runtime.ReadMemStats(&after)
	if got := after.TotalAlloc - before.TotalAlloc; got > 1<<20 {
		t.Errorf("10 rejected decodes allocated %d bytes", got)
	}
}

func TestDecodeRowsDoNotAlias(t *testing.T) {
	rows, _, err := npy.Decode(npyFile(1, dictFor("<f4", "(2, 2)"), f4(1, 2, 3, 4)))
	if err != nil {
		t.Fatal(err)
	}
	_ = append(rows[0], 99)
	if rows[1][0] != 3 {
		t.Errorf("appending to row 0 changed row 1 to %v", rows[1])
	}
}

func TestF8Conversion(t *testing.T) {
	in := []float64{0.1, 1e300, -1e300, 1e-50, math.Inf(-1), math.Pi}
	rows, _, err := npy.Decode(npyFile(1, dictFor("<f8", "(6,)"), f8(in...)))
	if err != nil {
		t.Fatal(err)
	}
	for i, x := range in {
		if want := float32(x); math.Float32bits(rows[0][i]) != math.Float32bits(want) {
			t.Errorf("value %d: got %v, want float32(%v) = %v", i, rows[0][i], x, want)
		}
	}
}

// special holds values whose bits must survive a round trip unchanged.
var special = []float32{
	0, float32(math.Copysign(0, -1)), 1, -1, math.MaxFloat32, math.SmallestNonzeroFloat32,
	float32(math.Inf(1)), float32(math.Inf(-1)), math.Float32frombits(0x7fc00001), math.Float32frombits(0xffbfffff),
}

func TestRoundTrip(t *testing.T) {
	for _, n := range []int{1, 2, 7} {
		for _, d := range []int{1, 3, 10, 128, 512, 4096} {
			for _, oneD := range []bool{false, true} {
				t.Run(fmt.Sprintf("n=%d/d=%d/oneD=%v", n, d, oneD), func(t *testing.T) {
					rows := make([][]float32, n)
					for i := range rows {
						rows[i] = make([]float32, d)
						for j := range rows[i] {
							rows[i][j] = special[(i*d+j)%len(special)] * float32(j%5+1)
						}
					}
					var buf bytes.Buffer
					if err := npy.Encode(&buf, rows, oneD); err != nil {
						t.Fatal(err)
					}
					b := buf.Bytes()
					hlen := int(binary.LittleEndian.Uint16(b[8:10]))
					if (10+hlen)%64 != 0 || b[9+hlen] != '\n' {
						t.Errorf("header length %d: data starts at %d, want a multiple of 64 after a newline", hlen, 10+hlen)
					}
					wantShape := fmt.Sprintf("(%d, %d)", n, d)
					if oneD && n == 1 {
						wantShape = fmt.Sprintf("(%d,)", d)
					}
					wantDict := "{'descr': '<f4', 'fortran_order': False, 'shape': " + wantShape + ", }"
					if got := strings.TrimRight(string(b[10:10+hlen]), " \n"); got != wantDict {
						t.Errorf("header %q, want %q", got, wantDict)
					}
					if len(b) != 10+hlen+4*n*d {
						t.Errorf("file is %d bytes, want %d", len(b), 10+hlen+4*n*d)
					}
					got, dim, err := npy.Decode(b)
					if err != nil {
						t.Fatalf("Decode: %v", err)
					}
					if dim != d || !sameBits(got, rows) {
						t.Errorf("round trip changed the rows (dim %d, want %d)", dim, d)
					}
				})
			}
		}
	}
}

func TestEncodeVector(t *testing.T) {
	v := []float32{0.5, -0.25, 3}
	b := npy.EncodeVector(v)
	var buf bytes.Buffer
	if err := npy.Encode(&buf, [][]float32{v}, true); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b, buf.Bytes()) {
		t.Errorf("EncodeVector differs from Encode(oneD)")
	}
	if _, _, err := npy.Decode(npy.EncodeVector(nil)); !errors.Is(err, npy.ErrFormat) {
		t.Errorf("Decode(EncodeVector(nil)) err = %v, want ErrFormat", err)
	}
}

func TestEncodeRejects(t *testing.T) {
	tests := []struct {
		name string
		rows [][]float32
	}{
		{"no rows", nil},
		{"empty row", [][]float32{{}}},
		{"ragged", [][]float32{{1, 2}, {3}}},
		{"too long", [][]float32{make([]float32, npy.MaxDim+1)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := npy.Encode(&buf, tt.rows, false); !errors.Is(err, npy.ErrFormat) {
				t.Errorf("err = %v, want ErrFormat", err)
			}
			if buf.Len() != 0 {
				t.Errorf("wrote %d bytes before failing", buf.Len())
			}
		})
	}
}

type failWriter struct{ after int }

func (w *failWriter) Write(p []byte) (int, error) {
	if w.after -= len(p); w.after < 0 {
		return 0, errors.New("disk full")
	}
	return len(p), nil
}

func TestEncodeWriteError(t *testing.T) {
	rows := make([][]float32, 100)
	for i := range rows {
		rows[i] = make([]float32, 512)
	}
	for _, after := range []int{0, 64, 100000} {
		if err := npy.Encode(&failWriter{after: after}, rows, false); err == nil || errors.Is(err, npy.ErrFormat) {
			t.Errorf("after %d bytes: err = %v, want the writer's error", after, err)
		}
	}
}

// readAll drains a Reader the way a bulk import would.
func readAll(r *npy.Reader) ([][]float32, error) {
	n, d := r.Shape()
	var rows [][]float32
	for {
		row := make([]float32, d)
		err := r.Next(row)
		if err == io.EOF {
			if len(rows) != n {
				return rows, fmt.Errorf("io.EOF after %d of %d rows", len(rows), n)
			}
			return rows, nil
		}
		if err != nil {
			return rows, err
		}
		rows = append(rows, row)
	}
}

func TestReaderMatchesDecode(t *testing.T) {
	inputs := map[string][]byte{
		"f4 1-D":    npyFile(1, dictFor("<f4", "(3,)"), f4(1, 2, 3)),
		"f8 2-D":    npyFile(2, dictFor("<f8", "(2, 3)"), f8(1, 2, 3, 4, 5, 6)),
		"many rows": mustEncode(t, 1000, 64),
		"wide row":  mustEncode(t, 3, 4096),
		"EncodeVec": npy.EncodeVector([]float32{1, 2}),
		"padded":    npyFile(1, strings.TrimSuffix(dictFor("<f4", "(2, 2)"), "\n")+"   \n", f4(1, 2, 3, 4)),
	}
	for name, in := range inputs {
		want, wantDim, err := npy.Decode(in)
		if err != nil {
			t.Fatalf("%s: Decode: %v", name, err)
		}
		for _, wrap := range []struct {
			name string
			fn   func(io.Reader) io.Reader
		}{
			{"plain", func(r io.Reader) io.Reader { return r }},
			{"one byte at a time", iotest.OneByteReader},
			{"EOF with data", iotest.DataErrReader},
		} {
			t.Run(name+"/"+wrap.name, func(t *testing.T) {
				r, err := npy.NewReader(wrap.fn(bytes.NewReader(in)))
				if err != nil {
					t.Fatal(err)
				}
				if n, d := r.Shape(); n != len(want) || d != wantDim {
					t.Errorf("Shape = (%d, %d), want (%d, %d)", n, d, len(want), wantDim)
				}
				got, err := readAll(r)
				if err != nil {
					t.Fatal(err)
				}
				if !sameBits(got, want) {
					t.Errorf("rows differ from Decode")
				}
				if err := r.Next(make([]float32, wantDim)); err != io.EOF {
					t.Errorf("Next after EOF = %v, want io.EOF", err)
				}
			})
		}
	}
}

func mustEncode(t testing.TB, n, d int) []byte {
	t.Helper()
	rows := make([][]float32, n)
	for i := range rows {
		rows[i] = make([]float32, d)
		for j := range rows[i] {
			rows[i][j] = float32(i*d + j)
		}
	}
	var buf bytes.Buffer
	if err := npy.Encode(&buf, rows, false); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestReaderRejects(t *testing.T) {
	for _, tt := range rejections {
		t.Run(tt.name, func(t *testing.T) {
			r, err := npy.NewReader(bytes.NewReader(tt.in))
			if err == nil {
				_, err = readAll(r)
			}
			if !errors.Is(err, npy.ErrFormat) {
				t.Errorf("err = %v, want ErrFormat", err)
			}
		})
	}
}

func TestReaderTruncated(t *testing.T) {
	full := mustEncode(t, 4, 8)
	for _, cut := range []int{4, 32, 33, 127} {
		r, err := npy.NewReader(bytes.NewReader(full[:len(full)-cut]))
		if err != nil {
			t.Fatal(err)
		}
		_, err = readAll(r)
		if !errors.Is(err, io.ErrUnexpectedEOF) || !errors.Is(err, npy.ErrFormat) {
			t.Errorf("cut %d: err = %v, want io.ErrUnexpectedEOF and ErrFormat", cut, err)
		}
		if again := r.Next(make([]float32, 8)); again != err {
			t.Errorf("cut %d: error not sticky: %v then %v", cut, err, again)
		}
	}
}

func TestReaderWrongDst(t *testing.T) {
	r, err := npy.NewReader(bytes.NewReader(mustEncode(t, 2, 4)))
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Next(make([]float32, 3)); err == nil || errors.Is(err, npy.ErrFormat) {
		t.Errorf("short dst: err = %v, want a usage error", err)
	}
	// A usage error is not sticky: the stream is still at row 0.
	rows, err := readAll(r)
	if err != nil || len(rows) != 2 || rows[0][1] != 1 {
		t.Errorf("after a usage error: rows %v, err %v", rows, err)
	}
}

func TestReaderReadError(t *testing.T) {
	in := mustEncode(t, 10, 16)
	boom := errors.New("boom")
	r, err := npy.NewReader(io.MultiReader(bytes.NewReader(in[:200]), iotest.ErrReader(boom)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := readAll(r); !errors.Is(err, boom) || errors.Is(err, npy.ErrFormat) {
		t.Errorf("err = %v, want the reader's error", err)
	}
	if _, err := npy.NewReader(iotest.ErrReader(boom)); !errors.Is(err, boom) {
		t.Errorf("NewReader err = %v, want the reader's error", err)
	}
}

// rowSource produces a 2-D '<f4' .npy stream of n rows without holding it.
type rowSource struct {
	hdr  []byte
	left int // data bytes still to produce
}

func (s *rowSource) Read(p []byte) (int, error) {
	if len(s.hdr) > 0 {
		n := copy(p, s.hdr)
		s.hdr = s.hdr[n:]
		return n, nil
	}
	if s.left == 0 {
		return 0, io.EOF
	}
	n := min(len(p), s.left)
	clear(p[:n])
	s.left -= n
	return n, nil
}

// The streaming reader's memory does not grow with the file: reading rows
// allocates nothing.
func TestReaderBoundedMemory(t *testing.T) {
	const n, d = 20000, 512 // 40 MB of data, never held
	src := &rowSource{left: n * d * 4}
	src.hdr = npyFile(1, dictFor("<f4", fmt.Sprintf("(%d, %d)", n, d)), nil)
	r, err := npy.NewReader(src)
	if err != nil {
		t.Fatal(err)
	}
	row := make([]float32, d)
	// AllocsPerRun calls the function once more to warm up: n rows in all.
	allocs := testing.AllocsPerRun(n-1, func() {
		if err := r.Next(row); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("Next allocates %v times per row", allocs)
	}
	if err := r.Next(row); err != io.EOF {
		t.Errorf("after %d rows: %v, want io.EOF", n, err)
	}
}

func BenchmarkDecode(b *testing.B) {
	for _, n := range []int{1, 100} {
		in := mustEncode(b, n, 512)
		b.Run(fmt.Sprintf("n=%d/d=512", n), func(b *testing.B) {
			b.SetBytes(int64(len(in)))
			for b.Loop() {
				if _, _, err := npy.Decode(in); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkReader(b *testing.B) {
	in := mustEncode(b, 1000, 512)
	row := make([]float32, 512)
	b.SetBytes(int64(len(in)))
	for b.Loop() {
		r, err := npy.NewReader(bytes.NewReader(in))
		if err != nil {
			b.Fatal(err)
		}
		for r.Next(row) == nil {
		}
	}
}
