//! Replica-like instruction counting by rewriting the module.
//!
//! Every function body is split into straight-line segments; a segment ends
//! after `loop`, `if`, `else`, `br`, `br_if`, `br_table`, `end`, `return`,
//! `unreachable` and tail calls (the first segment starts at the function's
//! first operator and, as in the replica, at cost 1, so even an empty
//! function costs 1). At the start of each segment the instrumented code
//! subtracts the sum of the segment's operator weights ([`weight`], the table
//! of `ic-facts.md`) from an injected mutable `i64` global; if the counter goes
//! below zero it executes `unreachable`, which the host reports as "instruction
//! limit exceeded". Bulk memory/table operations additionally charge their
//! length (1 per byte or element) right before they execute. The injected code
//! itself is not counted, like the replica's.
//!
//! The rewrite also exports what the host needs to snapshot/restore a message:
//! the counter, every defined mutable global, memory 0 and table 0, and it
//! removes the `start` section, exporting the start function instead (as the
//! replica does with `canister_start`), so re-instantiating a module for a
//! rollback never runs code.

use wasm_encoder::reencode::{Reencode, RoundtripReencoder};
use wasm_encoder::{
    BlockType, ConstExpr, ExportKind, ExportSection, Function, GlobalSection, GlobalType,
    Instruction, RawSection, ValType,
};
use wasmparser::{Operator, Parser, Payload, TypeRef};

/// Export name of the instruction counter global.
pub const COUNTER_EXPORT: &str = "__ic_host_instruction_counter";
/// Export name of memory 0.
pub const MEMORY_EXPORT: &str = "__ic_host_memory";
/// Export name of table 0.
pub const TABLE_EXPORT: &str = "__ic_host_table";
/// Export name of the (removed) start function.
pub const START_EXPORT: &str = "__ic_host_start";

/// Export name of defined mutable global number `i` (module global index).
pub fn global_export(i: u32) -> String {
    format!("__ic_host_global_{i}")
}

/// Result of [`instrument`].
pub struct Instrumented {
    /// The rewritten module.
    pub wasm: Vec<u8>,
    /// Export names of all defined mutable globals (to snapshot them).
    pub mutable_globals: Vec<String>,
    /// Whether a start function was exported as [`START_EXPORT`].
    pub has_start: bool,
}

/// Replica weight of one operator (`ic-facts.md`, "How the replica counts").
pub fn weight(op: &Operator) -> u64 {
    use Operator::*;
    match op {
        Block { .. } | Loop { .. } | Else | End => 0,
        GlobalGet { .. } | GlobalSet { .. } => 2,
        If { .. } | Br { .. } | BrIf { .. } | BrTable { .. } => 2,
        Call { .. } => 5,
        CallIndirect { .. } => 10,
        ReturnCall { .. } => 3,
        ReturnCallIndirect { .. } => 60,
        I32DivS | I32DivU | I32RemS | I32RemU | I64DivS | I64DivU | I64RemS | I64RemU => 10,
        F32Add | F32Sub | F32Mul | F64Add | F64Sub | F64Mul => 2,
        F32Ceil | F32Floor | F32Trunc | F32Nearest | F64Ceil | F64Floor | F64Trunc | F64Nearest => {
            2
        }
        F32Div => 3,
        F64Div => 5,
        F32Sqrt => 5,
        F64Sqrt => 8,
        F32Min | F32Max | F64Min | F64Max => 18,
        F32Eq | F32Ne | F32Lt | F32Gt | F32Le | F32Ge | F64Eq | F64Ne | F64Lt | F64Gt | F64Le
        | F64Ge => 3,
        F32Copysign => 2,
        F64Copysign => 3,
        F32ConvertI32S | F32ConvertI64S | F64ConvertI32S | F64ConvertI64S => 3,
        F32ConvertI32U | F32ConvertI64U | F64ConvertI32U | F64ConvertI64U => 16,
        I32TruncF32S | I32TruncF32U | I32TruncF64S | I32TruncF64U | I64TruncF32S | I64TruncF32U
        | I64TruncF64S | I64TruncF64U | I32TruncSatF32S | I32TruncSatF32U | I32TruncSatF64S
        | I32TruncSatF64U | I64TruncSatF32S | I64TruncSatF32U | I64TruncSatF64S
        | I64TruncSatF64U => 20,
        MemorySize { .. } => 20,
        MemoryGrow { .. } | TableGrow { .. } => 300,
        TableGet { .. } | TableSet { .. } => 5,
        TableSize { .. } => 100,
        MemoryCopy { .. }
        | MemoryFill { .. }
        | MemoryInit { .. }
        | TableCopy { .. }
        | TableFill { .. }
        | TableInit { .. } => 100,
        DataDrop { .. } | ElemDrop { .. } => 300,
        RefIsNull => 5,
        RefFunc { .. } => 130,
        _ => 1,
    }
}

/// Whether `op` ends a straight-line segment.
pub fn ends_segment(op: &Operator) -> bool {
    use Operator::*;
    matches!(
        op,
        Loop { .. }
            | If { .. }
            | Else
            | Br { .. }
            | BrIf { .. }
            | BrTable { .. }
            | End
            | Return
            | Unreachable
            | ReturnCall { .. }
            | ReturnCallIndirect { .. }
    )
}

/// Whether `op` moves a dynamic number of bytes/elements (length on top of the stack, i32).
fn is_bulk(op: &Operator) -> bool {
    use Operator::*;
    matches!(
        op,
        MemoryCopy { .. }
            | MemoryFill { .. }
            | MemoryInit { .. }
            | TableCopy { .. }
            | TableFill { .. }
            | TableInit { .. }
    )
}

fn err<E: std::fmt::Display>(e: E) -> String {
    format!("instrumentation failed: {e}")
}

fn emit_check(f: &mut Function, counter: u32) {
    f.instruction(&Instruction::GlobalGet(counter));
    f.instruction(&Instruction::I64Const(0));
    f.instruction(&Instruction::I64LtS);
    f.instruction(&Instruction::If(BlockType::Empty));
    f.instruction(&Instruction::Unreachable);
    f.instruction(&Instruction::End);
}

fn emit_static_charge(f: &mut Function, counter: u32, w: u64) {
    f.instruction(&Instruction::GlobalGet(counter));
    f.instruction(&Instruction::I64Const(w as i64));
    f.instruction(&Instruction::I64Sub);
    f.instruction(&Instruction::GlobalSet(counter));
    emit_check(f, counter);
}

fn emit_dynamic_charge(f: &mut Function, counter: u32, scratch: u32) {
    f.instruction(&Instruction::LocalSet(scratch));
    f.instruction(&Instruction::GlobalGet(counter));
    f.instruction(&Instruction::LocalGet(scratch));
    f.instruction(&Instruction::I64ExtendI32U);
    f.instruction(&Instruction::I64Sub);
    f.instruction(&Instruction::GlobalSet(counter));
    emit_check(f, counter);
    f.instruction(&Instruction::LocalGet(scratch));
}

fn instrument_body(
    body: &wasmparser::FunctionBody,
    num_params: u32,
    counter: u32,
) -> Result<Function, String> {
    let mut rt = RoundtripReencoder;
    let mut locals = Vec::new();
    let mut n = num_params;
    for l in body.get_locals_reader().map_err(err)? {
        let (count, ty) = l.map_err(err)?;
        locals.push((count, rt.val_type(ty).map_err(err)?));
        n += count;
    }
    let scratch = n;
    locals.push((1, ValType::I32));
    let mut f = Function::new(locals);
    let mut ops = Vec::new();
    let mut reader = body.get_operators_reader().map_err(err)?;
    while !reader.eof() {
        ops.push(reader.read().map_err(err)?);
    }
    let mut i = 0;
    while i < ops.len() {
        let mut j = i;
        // The replica starts a function's first segment at 1 (so every
        // function call costs at least 1, even an empty function).
        let mut w = u64::from(i == 0);
        loop {
            w += weight(&ops[j]);
            if ends_segment(&ops[j]) || j + 1 == ops.len() {
                break;
            }
            j += 1;
        }
        if w > 0 {
            emit_static_charge(&mut f, counter, w);
        }
        for op in &ops[i..=j] {
            if is_bulk(op) {
                emit_dynamic_charge(&mut f, counter, scratch);
            }
            f.instruction(&rt.instruction(op.clone()).map_err(err)?);
        }
        i = j + 1;
    }
    Ok(f)
}

/// Rewrites `wasm` with instruction counting (see the module docs).
pub fn instrument(wasm: &[u8]) -> Result<Instrumented, String> {
    let mut rt = RoundtripReencoder;
    let mut out = wasm_encoder::Module::new();
    let mut type_params: Vec<u32> = Vec::new();
    let mut func_types: Vec<u32> = Vec::new();
    let mut imported_globals = 0u32;
    let mut has_memory = false;
    let mut has_table = false;
    let mut defined_globals: Vec<bool> = Vec::new();
    let mut globals_done = false;
    let mut exports_done = false;
    let mut start: Option<u32> = None;
    for p in Parser::new(0).parse_all(wasm) {
        if let Payload::StartSection { func, .. } = p.map_err(err)? {
            start = Some(func);
        }
    }
    let mut code = wasm_encoder::CodeSection::new();
    let mut code_left = 0u32;
    let mut defined_func = 0usize;
    let mut mutable_globals = Vec::new();

    for payload in Parser::new(0).parse_all(wasm) {
        let payload = payload.map_err(err)?;
        let section_id = payload.as_section().map(|(id, _)| id);
        // Insert the global / export sections if the module has none.
        if let Some(id) = section_id {
            let order = section_order(id);
            if !globals_done && order > section_order(6) && id != 0 {
                let mut gs = GlobalSection::new();
                push_counter(&mut gs);
                out.section(&gs);
                globals_done = true;
            }
            if !exports_done && order > section_order(7) && id != 0 {
                let mut es = ExportSection::new();
                push_exports(
                    &mut es,
                    &mut mutable_globals,
                    imported_globals,
                    &defined_globals,
                    has_memory,
                    has_table,
                    start,
                );
                out.section(&es);
                exports_done = true;
            }
        }
        match payload {
            Payload::Version { .. } => {}
            Payload::TypeSection(r) => {
                for ft in r.clone().into_iter_err_on_gc_types() {
                    type_params.push(ft.map_err(err)?.params().len() as u32);
                }
                copy_raw(&mut out, wasm, 1, r.range());
            }
            Payload::ImportSection(r) => {
                for imp in r.clone() {
                    match imp.map_err(err)?.ty {
                        TypeRef::Global(_) => imported_globals += 1,
                        TypeRef::Memory(_) => has_memory = true,
                        TypeRef::Table(_) => has_table = true,
                        _ => {}
                    }
                }
                copy_raw(&mut out, wasm, 2, r.range());
            }
            Payload::FunctionSection(r) => {
                for t in r.clone() {
                    func_types.push(t.map_err(err)?);
                }
                copy_raw(&mut out, wasm, 3, r.range());
            }
            Payload::TableSection(r) => {
                has_table |= r.count() > 0;
                copy_raw(&mut out, wasm, 4, r.range());
            }
            Payload::MemorySection(r) => {
                has_memory |= r.count() > 0;
                copy_raw(&mut out, wasm, 5, r.range());
            }
            Payload::GlobalSection(r) => {
                for g in r.clone() {
                    defined_globals.push(g.map_err(err)?.ty.mutable);
                }
                let mut gs = GlobalSection::new();
                rt.parse_global_section(&mut gs, r).map_err(err)?;
                push_counter(&mut gs);
                out.section(&gs);
                globals_done = true;
            }
            Payload::ExportSection(r) => {
                let mut es = ExportSection::new();
                rt.parse_export_section(&mut es, r).map_err(err)?;
                push_exports(
                    &mut es,
                    &mut mutable_globals,
                    imported_globals,
                    &defined_globals,
                    has_memory,
                    has_table,
                    start,
                );
                out.section(&es);
                exports_done = true;
            }
            Payload::StartSection { .. } => {} // exported as START_EXPORT instead
            Payload::CodeSectionStart { count, .. } => {
                code_left = count;
                if count == 0 {
                    out.section(&code);
                }
            }
            Payload::CodeSectionEntry(body) => {
                let ty = *func_types
                    .get(defined_func)
                    .ok_or_else(|| err("function without type"))?;
                let params = *type_params
                    .get(ty as usize)
                    .ok_or_else(|| err("bad type index"))?;
                let counter = counter_index(imported_globals, &defined_globals);
                code.function(&instrument_body(&body, params, counter)?);
                defined_func += 1;
                code_left -= 1;
                if code_left == 0 {
                    out.section(&code);
                }
            }
            Payload::CustomSection(_) => {}
            Payload::End(_) => {}
            other => {
                if let Some((id, range)) = other.as_section() {
                    copy_raw(&mut out, wasm, id, range);
                } else {
                    return Err(err(
                        "unsupported wasm payload (components are not canisters)",
                    ));
                }
            }
        }
    }
    if !globals_done || !exports_done {
        // Module without code/data sections after the exports: append what is missing.
        if !globals_done {
            let mut gs = GlobalSection::new();
            push_counter(&mut gs);
            out.section(&gs);
        }
        if !exports_done {
            let mut es = ExportSection::new();
            push_exports(
                &mut es,
                &mut mutable_globals,
                imported_globals,
                &defined_globals,
                has_memory,
                has_table,
                start,
            );
            out.section(&es);
        }
    }
    Ok(Instrumented {
        wasm: out.finish(),
        mutable_globals,
        has_start: start.is_some(),
    })
}

/// Position of a section id in the binary's mandated order.
fn section_order(id: u8) -> u8 {
    match id {
        13 => 11, // tag: after memory, before global
        12 => 19, // data count: after element, before code
        n => n * 2,
    }
}

fn copy_raw(out: &mut wasm_encoder::Module, wasm: &[u8], id: u8, range: std::ops::Range<usize>) {
    out.section(&RawSection {
        id,
        data: &wasm[range],
    });
}

fn push_counter(gs: &mut GlobalSection) {
    gs.global(
        GlobalType {
            val_type: ValType::I64,
            mutable: true,
            shared: false,
        },
        &ConstExpr::i64_const(0),
    );
}

#[allow(clippy::too_many_arguments)]
/// Index of the injected counter global: it follows every imported and
/// defined global.
fn counter_index(imported_globals: u32, defined_globals: &[bool]) -> u32 {
    imported_globals + defined_globals.len() as u32
}

fn push_exports(
    es: &mut ExportSection,
    mutable_globals: &mut Vec<String>,
    imported_globals: u32,
    defined_globals: &[bool],
    has_memory: bool,
    has_table: bool,
    start: Option<u32>,
) {
    let counter = counter_index(imported_globals, defined_globals);
    es.export(COUNTER_EXPORT, ExportKind::Global, counter);
    for (i, mutable) in defined_globals.iter().enumerate() {
        if *mutable {
            let idx = imported_globals + i as u32;
            let name = global_export(idx);
            es.export(&name, ExportKind::Global, idx);
            mutable_globals.push(name);
        }
    }
    if has_memory {
        es.export(MEMORY_EXPORT, ExportKind::Memory, 0);
    }
    if has_table {
        es.export(TABLE_EXPORT, ExportKind::Table, 0);
    }
    if let Some(f) = start {
        es.export(START_EXPORT, ExportKind::Func, f);
    }
}
