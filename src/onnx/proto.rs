//! The few ONNX protobuf messages a feed-forward graph needs, written by
//! hand in the protobuf wire format (field numbers from onnx.proto; no
//! code generation, no dependency): a model, its graph, nodes, attributes,
//! tensors and typed inputs and outputs.

/// ONNX tensor element types.
#[derive(Debug, Clone, Copy)]
pub enum ElemType {
    Float = 1,
    Int64 = 7,
}

/// One protobuf message being written.
#[derive(Debug, Default, Clone)]
pub struct Message(Vec<u8>);

impl Message {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn into_bytes(self) -> Vec<u8> {
        self.0
    }

    fn varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.0.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.0.push(v as u8);
    }

    fn key(&mut self, field: u32, wire_type: u8) {
        self.varint(((field as u64) << 3) | wire_type as u64);
    }

    /// An integer field (int32, int64, enum).
    pub fn int(mut self, field: u32, v: i64) -> Self {
        self.key(field, 0);
        self.varint(v as u64);
        self
    }

    /// A float field.
    pub fn float(mut self, field: u32, v: f32) -> Self {
        self.key(field, 5);
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }

    /// A bytes, string or embedded-message field.
    pub fn bytes(mut self, field: u32, v: &[u8]) -> Self {
        self.key(field, 2);
        self.varint(v.len() as u64);
        self.0.extend_from_slice(v);
        self
    }

    pub fn string(self, field: u32, v: &str) -> Self {
        self.bytes(field, v.as_bytes())
    }

    pub fn message(self, field: u32, v: Message) -> Self {
        self.bytes(field, &v.0)
    }
}

/// TensorProto: `dims` and little-endian `raw` data.
pub fn tensor(name: &str, elem: ElemType, dims: &[usize], raw: &[u8]) -> Message {
    let mut t = Message::new();
    for &d in dims {
        t = t.int(1, d as i64);
    }
    t.int(2, elem as i64).string(8, name).bytes(9, raw)
}

/// A float tensor.
pub fn float_tensor(name: &str, dims: &[usize], values: &[f32]) -> Message {
    let raw: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    tensor(name, ElemType::Float, dims, &raw)
}

/// An int64 tensor.
pub fn int_tensor(name: &str, dims: &[usize], values: &[i64]) -> Message {
    let raw: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    tensor(name, ElemType::Int64, dims, &raw)
}

/// A dimension of an input or output: fixed, or named (dynamic).
#[derive(Debug, Clone, Copy)]
pub enum Dim<'a> {
    Fixed(usize),
    Named(&'a str),
}

/// ValueInfoProto: a typed graph input or output.
pub fn value_info(name: &str, elem: ElemType, dims: &[Dim]) -> Message {
    let mut shape = Message::new();
    for d in dims {
        let dim = match d {
            Dim::Fixed(n) => Message::new().int(1, *n as i64),
            Dim::Named(s) => Message::new().string(2, s),
        };
        shape = shape.message(1, dim);
    }
    let tensor_type = Message::new().int(1, elem as i64).message(2, shape);
    Message::new()
        .string(1, name)
        .message(2, Message::new().message(1, tensor_type))
}

/// An attribute of a node.
#[derive(Debug, Clone)]
pub enum Attr<'a> {
    Int(&'a str, i64),
    Float(&'a str, f32),
    Ints(&'a str, Vec<i64>),
}

impl Attr<'_> {
    fn encode(&self) -> Message {
        match self {
            Attr::Float(name, v) => Message::new().string(1, name).float(2, *v).int(20, 1),
            Attr::Int(name, v) => Message::new().string(1, name).int(3, *v).int(20, 2),
            Attr::Ints(name, vs) => {
                let mut m = Message::new().string(1, name);
                for v in vs {
                    m = m.int(8, *v);
                }
                m.int(20, 7)
            }
        }
    }
}

/// NodeProto: `op` from `inputs` to `outputs`.
pub fn node(op: &str, inputs: &[&str], outputs: &[&str], attrs: &[Attr]) -> Message {
    let mut n = Message::new();
    for i in inputs {
        n = n.string(1, i);
    }
    for o in outputs {
        n = n.string(2, o);
    }
    n = n.string(3, &format!("{op}_{}", outputs[0])).string(4, op);
    for a in attrs {
        n = n.message(5, a.encode());
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_format_of_known_values() {
        // From the protobuf encoding guide: field 1 = 150 is 08 96 01.
        assert_eq!(Message::new().int(1, 150).into_bytes(), [0x08, 0x96, 0x01]);
        // Field 2 = "testing" is 12 07 74 65 73 74 69 6e 67.
        assert_eq!(
            Message::new().string(2, "testing").into_bytes(),
            [0x12, 0x07, b't', b'e', b's', b't', b'i', b'n', b'g']
        );
        // A negative int64 takes ten bytes (two's complement varint).
        assert_eq!(Message::new().int(1, -1).into_bytes().len(), 11);
        assert_eq!(
            Message::new().float(2, 1.0).into_bytes(),
            [0x15, 0, 0, 0x80, 0x3f]
        );
    }
}
