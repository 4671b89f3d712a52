"""The parts of a Kineto/Chrome trace event that we decode; everything else is skipped.

Decoding straight into these structs skips unknown keys without building Python objects
for them, which is most of the cost of a plain `json.loads` of a trace.
"""

from __future__ import annotations

import math

import msgspec

NOT_RECORDED = -1
# The structs hold scalars, strings, raw bytes and their args only (no cycles), so they are allocated without the
# garbage collector: its generation-0 count grows with each tracked allocation, and a rank's ~200,000 structs made
# ~250 collections a load (0.06 CPU-s of a 26 MB trace's 0.35, 0.09 in a Dask worker, whose heap is twice as large).


class EventArgs(msgspec.Struct, gc=False):
    """The `args` of an event: ids that link CPU launches to GPU work, sizes, shapes."""

    external_id: int = msgspec.field(name="External id", default=NOT_RECORDED)
    external_id_v1: int = msgspec.field(name="external id", default=NOT_RECORDED)
    correlation: int = NOT_RECORDED
    device: int | str = NOT_RECORDED  # ROCm traces write some ids as hex strings ("0x0")
    stream: int | str = NOT_RECORDED
    flops: float = math.nan
    bytes: int = NOT_RECORDED
    input_dims: msgspec.Raw = msgspec.field(name="Input Dims", default=msgspec.Raw())
    input_type: msgspec.Raw = msgspec.field(name="Input type", default=msgspec.Raw())
    grid: msgspec.Raw = msgspec.Raw()  # a kernel's launch grid, [x, y, z]
    # collectives (record_param_comms, NCCL kernels): read by loaders/kineto_comm_args.py
    collective: str = msgspec.field(name="Collective name", default="")
    in_nelems: int = msgspec.field(name="In msg nelems", default=NOT_RECORDED)
    out_nelems: int = msgspec.field(name="Out msg nelems", default=NOT_RECORDED)
    group_size: int = msgspec.field(name="Group size", default=NOT_RECORDED)
    dtype: str = ""
    process_group: str = msgspec.field(name="Process Group Name", default="")
    # `[memory]` instant events
    alloc_bytes: int = msgspec.field(name="Bytes", default=0)
    total_allocated: int = msgspec.field(name="Total Allocated", default=NOT_RECORDED)
    total_reserved: int = msgspec.field(name="Total Reserved", default=NOT_RECORDED)
    device_id: int = msgspec.field(name="Device Id", default=NOT_RECORDED)
    # metadata ('M') events: thread_name, process_name
    label: str = msgspec.field(name="name", default="")


NO_ARGS = EventArgs()


class Event(msgspec.Struct, gc=False):
    """One element of `traceEvents`."""

    ph: str = ""
    cat: str = ""
    name: str = ""
    ts: float = math.nan
    dur: float = math.nan
    pid: int | str = NOT_RECORDED
    tid: int | str = NOT_RECORDED
    args: EventArgs | None = None


_typed_batch = msgspec.json.Decoder(list[Event], strict=False)
_raw_batch = msgspec.json.Decoder(list[msgspec.Raw])
_one_event = msgspec.json.Decoder(Event, strict=False)


def decode_batch(data: bytes) -> tuple[list[Event], int, str]:
    """Decode a JSON array of events; returns (events, number skipped as malformed, what was wrong with one).

    A batch whose events all fit the schema decodes in one typed pass. If any field has an
    unexpected type, the events are decoded one by one, so one odd event is skipped and
    counted rather than failing the file.
    """
    try:
        return _typed_batch.decode(data), 0, ""
    except msgspec.ValidationError:
        pass
    items = _raw_batch.decode(data)
    events: list[Event] = []
    problem = ""
    for item in items:
        try:
            events.append(_one_event.decode(item))
        except msgspec.ValidationError as exc:  # "Number out of range - at `$.dur`": names the field
            problem = problem or str(exc)
    return events, len(items) - len(events), problem

