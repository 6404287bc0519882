//! A zip archive of stored (uncompressed) files, so that the page's export downloads as one file:
//! local headers, the data, then the central directory (PKWARE's APPNOTE, version 2.0 fields only).
//! Model weights barely compress, and storing keeps this small and fast.

/// CRC-32 (IEEE, reflected, as zip and gzip use it).
pub fn crc32(bytes: &[u8]) -> u32 {
    let mut table = [0u32; 256];
    for (i, t) in table.iter_mut().enumerate() {
        let mut c = i as u32;
        for _ in 0..8 {
            c = if c & 1 != 0 { 0xEDB8_8320 ^ (c >> 1) } else { c >> 1 };
        }
        *t = c;
    }
    !bytes.iter().fold(!0u32, |c, &b| table[((c ^ b as u32) & 0xFF) as usize] ^ (c >> 8))
}

/// The zip of `files` (name, bytes), each stored under its name in one folder `dir/`. Refused when
/// a file or the archive passes 4 GiB (zip64 is not written).
pub fn zip_stored(dir: &str, files: &[(String, Vec<u8>)]) -> crate::error::Result<Vec<u8>> {
    let mut out = Vec::new();
    let mut central = Vec::new();
    let u16le = |v: &mut Vec<u8>, x: u16| v.extend_from_slice(&x.to_le_bytes());
    let u32le = |v: &mut Vec<u8>, x: u32| v.extend_from_slice(&x.to_le_bytes());
    let big = |what: &str| crate::error::Error::Limit(format!("{what} is over 4 GiB, more than a plain zip holds: download the files one by one"));
    for (name, bytes) in files {
        let path = format!("{dir}/{name}");
        let len = u32::try_from(bytes.len()).map_err(|_| big(name))?;
        let offset = u32::try_from(out.len()).map_err(|_| big("the archive"))?;
        let crc = crc32(bytes);
        // version 2.0, no flags, stored, time and date 0 (1980-01-01)
        let fields = |v: &mut Vec<u8>| {
            u16le(v, 20);
            u16le(v, 0);
            u16le(v, 0);
            u16le(v, 0);
            u16le(v, 0x21);
            u32le(v, crc);
            u32le(v, len);
            u32le(v, len);
            u16le(v, path.len() as u16);
            u16le(v, 0);
        };
        u32le(&mut out, 0x0403_4b50);
        fields(&mut out);
        out.extend_from_slice(path.as_bytes());
        out.extend_from_slice(bytes);
        u32le(&mut central, 0x0201_4b50);
        u16le(&mut central, 20); // made by
        fields(&mut central);
        u16le(&mut central, 0); // comment
        u16le(&mut central, 0); // disk
        u16le(&mut central, 0); // internal attributes
        u32le(&mut central, 0); // external attributes
        u32le(&mut central, offset);
        central.extend_from_slice(path.as_bytes());
    }
    let cd_offset = u32::try_from(out.len()).map_err(|_| big("the archive"))?;
    let cd_len = central.len() as u32;
    out.extend_from_slice(&central);
    u32le(&mut out, 0x0605_4b50);
    u16le(&mut out, 0);
    u16le(&mut out, 0);
    u16le(&mut out, files.len() as u16);
    u16le(&mut out, files.len() as u16);
    u32le(&mut out, cd_len);
    u32le(&mut out, cd_offset);
    u16le(&mut out, 0);
    Ok(out)
}
