"""A mock BlueZ serving one simulated OpKey machine (python-dbusmock template).

Load it on a private bus with

    python -m dbusmock --system --template tests/ble/mock_bluez.py \
        -p '{"machine_id": "mch_…", "machine_address": "127.0.0.1:PORT", "att_mtu": 23}'

It is python-dbusmock's ``bluez5`` template plus:

- adapter ``hci0`` and one device advertising the OpKey service UUID and the
  manufacturer data of ``machine_id`` (company 0xFFFF, then the 6-byte machine tag,
  PROTOCOL.md 2.4, computed here independently of the Rust code);
- the OpKey GATT service with ``RX`` (write, write without response) and ``TX``
  (notify), both publishing ``MTU = att_mtu``;
- a bridge to the machine simulator's local socket (PROTOCOL.md 2.10): ``StartNotify``
  on ``TX`` opens the TCP connection (the machine sends its Hello on accept), every
  ``WriteValue`` on ``RX`` goes out as ``u16 BE length ‖ fragment``, every frame the
  machine sends comes back as a ``PropertiesChanged`` of ``TX``'s ``Value``, and
  ``Disconnect`` (or the machine hanging up) closes it.

What btleplug (through bluez-async) needs from a mock, beyond the template:
1. ``Device1.Connect`` also sets ``ServicesResolved`` (bluez-async waits for it);
2. every GATT interface has at least one method (an interface with properties only
   makes bluez-async's introspection parser fail with "duplicate field `interface`");
3. notifications are ``PropertiesChanged`` of ``Value`` on the characteristic;
4. ``InterfacesAdded`` is emitted for objects added by hand (``AddObject`` does not).
"""

# SPDX-License-Identifier: Apache-2.0

import hashlib
import socket
import struct

import dbus
from dbusmock import OBJECT_MANAGER_IFACE, mockobject
from dbusmock.templates import bluez5

# The bluez5 template's D-Bus methods: AddTemplate registers every decorated function
# found in this module, so they are brought in by name.
from dbusmock.templates.bluez5 import (  # noqa: F401  pylint: disable=unused-import
    AddAdapter,
    AddDevice,
    RemoveDevice,
    SetDiscoveryFilter,
    StartDiscovery,
    StopDiscovery,
)
from gi.repository import GLib

BUS_NAME = bluez5.BUS_NAME
MAIN_OBJ = bluez5.MAIN_OBJ
SYSTEM_BUS = True
IS_OBJECT_MANAGER = True

DEVICE_IFACE = "org.bluez.Device1"
SERVICE_IFACE = "org.bluez.GattService1"
CHAR_IFACE = "org.bluez.GattCharacteristic1"

SERVICE_UUID = "6f706b79-0001-4d61-6368-696e654b6579"
RX_UUID = "6f706b79-0002-4d61-6368-696e654b6579"
TX_UUID = "6f706b79-0003-4d61-6368-696e654b6579"
COMPANY_ID = 0xFFFF
DEVICE_ADDRESS = "C0:FF:EE:00:00:01"
MAX_FRAME = 512


def machine_tag(machine_id):
    """SHA-256("opkey-adv-v1" ‖ machine_id)[0..6] (PROTOCOL.md 2.4)."""
    return hashlib.sha256(b"opkey-adv-v1" + machine_id.encode("utf-8")).digest()[:6]


class Bridge:
    """The one link to the machine simulator: a TCP connection while TX is subscribed."""

    def __init__(self, address, device, tx):
        host, port = address.rsplit(":", 1)
        self.address = (host, int(port))
        self.device = device
        self.tx = tx
        self.sock = None
        self.watch = None
        self.buffer = b""

    def open(self):
        if self.sock is not None:
            return
        self.sock = socket.create_connection(self.address, timeout=5)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buffer = b""
        self.watch = GLib.io_add_watch(
            self.sock.fileno(), GLib.PRIORITY_DEFAULT, GLib.IO_IN | GLib.IO_HUP | GLib.IO_ERR, self.on_readable
        )

    def close(self):
        if self.watch is not None:
            GLib.source_remove(self.watch)
            self.watch = None
        if self.sock is not None:
            try:
                self.sock.close()
            except OSError:
                pass
            self.sock = None

    def send(self, fragment):
        if self.sock is None:
            raise dbus.exceptions.DBusException("Not subscribed", name="org.bluez.Error.Failed")
        if len(fragment) > MAX_FRAME:
            raise dbus.exceptions.DBusException("Value too long", name="org.bluez.Error.InvalidValueLength")
        try:
            self.sock.sendall(struct.pack(">H", len(fragment)) + bytes(fragment))
        except OSError as e:
            self.lost()
            raise dbus.exceptions.DBusException("Not connected", name="org.bluez.Error.NotConnected") from e

    def on_readable(self, _fd, condition):
        data = b""
        if condition & GLib.IO_IN:
            try:
                data = self.sock.recv(4096)
            except OSError:
                data = b""
        if not data:
            # The machine hung up: the link is gone.
            self.watch = None
            self.lost()
            return False
        self.buffer += data
        while len(self.buffer) >= 2:
            (length,) = struct.unpack(">H", self.buffer[:2])
            if length > MAX_FRAME:
                self.watch = None
                self.lost()
                return False
            if len(self.buffer) < 2 + length:
                break
            fragment, self.buffer = self.buffer[2 : 2 + length], self.buffer[2 + length :]
            # Fix 3: a notification is a PropertiesChanged of Value.
            self.tx.UpdateProperties(CHAR_IFACE, {"Value": dbus.Array(fragment, signature="y")})
        return True

    def lost(self):
        self.close()
        set_connected(self.device, False)
        self.tx.UpdateProperties(CHAR_IFACE, {"Notifying": dbus.Boolean(False)})


BRIDGE = None


def set_connected(device, connected):
    device.connected = connected
    device.UpdateProperties(
        DEVICE_IFACE,
        {"Connected": dbus.Boolean(connected), "ServicesResolved": dbus.Boolean(connected)},
    )


def device_connect(device):
    # Fix 1: bluez-async waits for ServicesResolved after Connect.
    if not device.connected:
        set_connected(device, True)


def device_disconnect(device):
    if not device.connected:
        raise dbus.exceptions.DBusException("Not Connected", name="org.bluez.Error.NotConnected")
    BRIDGE.close()
    set_connected(device, False)
    BRIDGE.tx.UpdateProperties(CHAR_IFACE, {"Notifying": dbus.Boolean(False)})


def rx_write_value(_rx, value, _options):
    if not BRIDGE.device.connected:
        raise dbus.exceptions.DBusException("Not connected", name="org.bluez.Error.NotConnected")
    BRIDGE.send(value)


def tx_start_notify(tx):
    if not BRIDGE.device.connected:
        raise dbus.exceptions.DBusException("Not connected", name="org.bluez.Error.NotConnected")
    try:
        BRIDGE.open()
    except OSError as e:
        raise dbus.exceptions.DBusException(f"machine unreachable: {e}", name="org.bluez.Error.Failed") from e
    tx.UpdateProperties(CHAR_IFACE, {"Notifying": dbus.Boolean(True)})


def tx_stop_notify(tx):
    BRIDGE.close()
    tx.UpdateProperties(CHAR_IFACE, {"Notifying": dbus.Boolean(False)})


def announce(path, iface):
    """Fix 4: tell ObjectManager listeners about an object added by hand."""
    obj = mockobject.objects[path]
    mockobject.objects["/"].EmitSignal(
        OBJECT_MANAGER_IFACE,
        "InterfacesAdded",
        "oa{sa{sv}}",
        [dbus.ObjectPath(path), {iface: obj.props[iface]}],
    )


def load(mock, parameters):
    bluez5.load(mock, parameters)
    # The root object is registered only after load() returns: add the rest from the
    # main loop.
    GLib.idle_add(add_machine, mock, parameters)


def add_machine(mock, parameters):
    global BRIDGE  # pylint: disable=global-statement
    machine_id = parameters["machine_id"]
    att_mtu = int(parameters.get("att_mtu", 23))

    mock.AddAdapter("hci0", "opkey-test-host")
    device_path = mock.AddDevice("hci0", DEVICE_ADDRESS, "OpKey machine")
    device = mockobject.objects[device_path]
    device.AddMethods(
        DEVICE_IFACE,
        [("Connect", "", "", device_connect), ("Disconnect", "", "", device_disconnect)],
    )
    device.UpdateProperties(
        DEVICE_IFACE,
        {
            "UUIDs": dbus.Array([SERVICE_UUID], signature="s"),
            "ManufacturerData": dbus.Dictionary(
                {dbus.UInt16(COMPANY_ID): dbus.Array(machine_tag(machine_id), signature="y", variant_level=1)},
                signature="qv",
            ),
            "RSSI": dbus.Int16(-60),
        },
    )

    service_path = device_path + "/service0010"
    mock.AddObject(
        service_path,
        SERVICE_IFACE,
        {
            "UUID": SERVICE_UUID,
            "Primary": dbus.Boolean(True),
            "Device": dbus.ObjectPath(device_path),
            "Handle": dbus.UInt16(0x10),
        },
        # Fix 2: a property-only interface breaks bluez-async's introspection parsing.
        [("MockNoop", "", "", "")],
    )
    rx_path = service_path + "/char0011"
    mock.AddObject(
        rx_path,
        CHAR_IFACE,
        {
            "UUID": RX_UUID,
            "Service": dbus.ObjectPath(service_path),
            "Flags": dbus.Array(["write-without-response", "write"], signature="s"),
            "Value": dbus.Array([], signature="y"),
            "Handle": dbus.UInt16(0x11),
            "MTU": dbus.UInt16(att_mtu),
        },
        [("WriteValue", "aya{sv}", "", rx_write_value)],
    )
    tx_path = service_path + "/char0013"
    mock.AddObject(
        tx_path,
        CHAR_IFACE,
        {
            "UUID": TX_UUID,
            "Service": dbus.ObjectPath(service_path),
            "Flags": dbus.Array(["notify"], signature="s"),
            "Value": dbus.Array([], signature="y"),
            "Notifying": dbus.Boolean(False),
            "Handle": dbus.UInt16(0x13),
            "MTU": dbus.UInt16(att_mtu),
        },
        [("StartNotify", "", "", tx_start_notify), ("StopNotify", "", "", tx_stop_notify)],
    )
    BRIDGE = Bridge(parameters["machine_address"], device, mockobject.objects[tx_path])
    for path, iface in [(service_path, SERVICE_IFACE), (rx_path, CHAR_IFACE), (tx_path, CHAR_IFACE)]:
        announce(path, iface)
    return False
