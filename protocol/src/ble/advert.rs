//! How a phone finds the machine it means to open (PROTOCOL.md 2.4): the GATT service and
//! characteristic UUIDs, and the 6-byte machine tag in the manufacturer data. MAC addresses
//! rotate and are never stored; the tag is derived from the machine id alone.

use ring::digest::{SHA256, digest};

/// The OpKey GATT service, advertised as a 128-bit UUID.
pub const SERVICE_UUID: u128 = 0x6f706b79_0001_4d61_6368_696e654b6579;
/// Phone → machine: write without response, and write.
pub const RX_UUID: u128 = 0x6f706b79_0002_4d61_6368_696e654b6579;
/// Machine → phone: notify.
pub const TX_UUID: u128 = 0x6f706b79_0003_4d61_6368_696e654b6579;

pub const SERVICE_UUID_STR: &str = "6f706b79-0001-4d61-6368-696e654b6579";
pub const RX_UUID_STR: &str = "6f706b79-0002-4d61-6368-696e654b6579";
pub const TX_UUID_STR: &str = "6f706b79-0003-4d61-6368-696e654b6579";

/// Bluetooth SIG company identifier in the manufacturer data (0xFFFF: the test id, until
/// one is assigned).
pub const COMPANY_ID: u16 = 0xFFFF;
/// Length of a machine tag.
pub const MACHINE_TAG_LEN: usize = 6;

const TAG_CONTEXT: &[u8] = b"opkey-adv-v1";

/// `SHA-256("opkey-adv-v1" ‖ machine_id)[0..6]`, the machine id as UTF-8 with no length.
pub fn machine_tag(machine_id: &str) -> [u8; MACHINE_TAG_LEN] {
    let mut input = Vec::with_capacity(TAG_CONTEXT.len() + machine_id.len());
    input.extend_from_slice(TAG_CONTEXT);
    input.extend_from_slice(machine_id.as_bytes());
    let mut tag = [0u8; MACHINE_TAG_LEN];
    tag.copy_from_slice(&digest(&SHA256, &input).as_ref()[..MACHINE_TAG_LEN]);
    tag
}

/// The manufacturer-specific data field's value: the company id (little-endian, as
/// Bluetooth encodes it) then the machine tag.
pub fn manufacturer_data(machine_id: &str) -> [u8; 2 + MACHINE_TAG_LEN] {
    let mut data = [0u8; 2 + MACHINE_TAG_LEN];
    data[..2].copy_from_slice(&COMPANY_ID.to_le_bytes());
    data[2..].copy_from_slice(&machine_tag(machine_id));
    data
}

/// The hyphenated lower-case form of a 128-bit UUID.
pub fn uuid_string(uuid: u128) -> String {
    let hex = format!("{uuid:032x}");
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_uuid_strings_and_numbers_name_the_same_uuids() {
        assert_eq!(uuid_string(SERVICE_UUID), SERVICE_UUID_STR);
        assert_eq!(uuid_string(RX_UUID), RX_UUID_STR);
        assert_eq!(uuid_string(TX_UUID), TX_UUID_STR);
    }

    #[test]
    fn a_machine_tag_is_stable_and_differs_between_machines() {
        let a = machine_tag("mch_aaaaaaaaaaaaaaaa");
        assert_eq!(a, machine_tag("mch_aaaaaaaaaaaaaaaa"));
        assert_ne!(a, machine_tag("mch_aaaaaaaaaaaaaaab"));
        let expected = digest(&SHA256, b"opkey-adv-v1mch_aaaaaaaaaaaaaaaa");
        assert_eq!(a, expected.as_ref()[..6]);
    }

    #[test]
    fn the_advertisement_fills_exactly_31_bytes() {
        let flags = 3;
        let uuid_list = 2 + 16;
        let manufacturer = 2 + manufacturer_data("mch_x").len();
        assert_eq!(flags + uuid_list + manufacturer, 31);
    }
}
