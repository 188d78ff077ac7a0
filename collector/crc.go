package collector

// The CRC-32 of a gzip member covers its whole text, but the figures'
// pieces are compressed, and their CRCs taken, once per analysis: a scrape
// combines the pieces' CRCs into the member's. CRC-32 is linear over
// GF(2): the CRC of A followed by B is the CRC of A multiplied by x^(8*|B|)
// modulo the CRC polynomial, added to the CRC of B. Polynomials here are
// in the reflected bit order of CRC-32 (IEEE), the order of hash/crc32:
// bit 31 is the coefficient of x^0, bit 0 that of x^31.

// crcPolynomial is the CRC-32 (IEEE) polynomial without its x^32 term,
// reflected.
const crcPolynomial = 0xedb88320

// crcShift is the operator that moves a CRC over n bytes: x^(8n) modulo
// the polynomial.
type crcShift uint32

// shiftOver returns the crcShift over n bytes, by squaring.
func shiftOver(n int64) crcShift {
	shift := uint32(1) << 31 // x^0
	power := uint32(1) << 23 // x^8: one byte
	for ; n > 0; n >>= 1 {
		if n&1 != 0 {
			shift = multiplyModulo(power, shift)
		}
		power = multiplyModulo(power, power)
	}
	return crcShift(shift)
}

// combineCRC returns the CRC-32 (IEEE) of A followed by B from the CRC of
// A, the CRC of B and the shift over B's length.
func combineCRC(crcA, crcB uint32, shiftB crcShift) uint32 {
	return multiplyModulo(uint32(shiftB), crcA) ^ crcB
}

// multiplyModulo returns a*b modulo the CRC polynomial.
func multiplyModulo(a, b uint32) uint32 {
	var product uint32
	for term := uint32(1) << 31; term != 0; term >>= 1 {
		if a&term != 0 {
			product ^= b
		}
		// b *= x: the x^31 coefficient (bit 0) overflows into x^32,
		// which is the polynomial's remaining terms.
		if b&1 != 0 {
			b = b>>1 ^ crcPolynomial
		} else {
			b >>= 1
		}
	}
	return product
}
