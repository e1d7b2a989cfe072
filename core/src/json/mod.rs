//! QEMU's JSON dialect: lexing, validation and navigation of requests, and the byte-exact
//! writer of replies.

pub mod echo;
pub mod lexer;
pub mod order;
pub mod parse;
pub mod ser;
pub mod string;
pub mod write;
