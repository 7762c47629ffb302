package core

import (
	"bytes"
	"testing"

	"github.com/wsmachine/wsmachine/websocket/internal/wstest"
)

func maskNaive(key [4]byte, pos int, b []byte) {
	for i := range b {
		b[i] ^= key[(pos+i)%4]
	}
}

func TestMaskMatchesNaive(t *testing.T) {
	key := [4]byte{0x12, 0x34, 0x56, 0x78}
	for n := 0; n < 40; n++ {
		for pos := 0; pos < 4; pos++ {
			want := make([]byte, n)
			for i := range want {
				want[i] = byte(i * 7)
			}
			got := bytes.Clone(want)
			maskNaive(key, pos, want)
			if next := Mask(key, pos, got); next != (pos+n)%4 {
				t.Errorf("n=%d pos=%d: next position %d", n, pos, next)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("n=%d pos=%d: % x, want % x", n, pos, got, want)
			}
		}
	}
}

// BenchmarkMask measures unmasking against a memmove of the same size in
// the same run: the physical reference of a pass over the bytes.
func BenchmarkMask(b *testing.B) {
	for _, size := range []int{16, 1024, 65536} {
		buf, dst := make([]byte, size), make([]byte, size)
		b.Run(wstest.SizeName(size), func(b *testing.B) {
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				Mask([4]byte{1, 2, 3, 4}, 1, buf)
			}
		})
		b.Run(wstest.SizeName(size)+"-memmove", func(b *testing.B) {
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				copy(dst, buf)
			}
		})
	}
}
