//! The media request pipeline.
