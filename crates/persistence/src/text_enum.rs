//! Closed sets of values stored as text (roles, job states, delivery statuses): a Rust
//! enum on our side, a `CHECK (... IN (...))` text column on the database's, and the same
//! lowercase word in JSON — declared once with [`text_enum!`](crate::text_enum).

/// A text that names none of an enum's values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("must be one of {expected}")]
pub struct UnknownValue {
    /// The accepted values, comma-separated.
    pub expected: &'static str,
}

/// Declares an enum whose values are stored as text: each variant names its word. The
/// enum gets `as_str`, `ALL`, `Display`, `FromStr` (error: [`UnknownValue`]), serde (the
/// word), utoipa's schema (a string enum of the words), and diesel's mapping to `Text`
/// (use it in `table!` columns, query binds and `QueryableByName` rows). The calling
/// crate needs `serde`, `utoipa` and `diesel` as dependencies.
///
/// ```ignore
/// keel_persistence::text_enum! {
///     /// Where a job is in its life.
///     pub enum JobState { Pending = "pending", Running = "running" }
/// }
/// ```
#[macro_export]
macro_rules! text_enum {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident = $text:literal ),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord,
            serde::Serialize, serde::Deserialize,
            diesel::expression::AsExpression, diesel::deserialize::FromSqlRow,
        )]
        #[diesel(sql_type = diesel::sql_types::Text)]
        $vis enum $name {
            $( $(#[$vmeta])* #[serde(rename = $text)] $variant ),+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// Every stored word, in declaration order.
            pub const WORDS: &'static [&'static str] = &[$($text),+];

            /// The stored and serialised word.
            pub fn as_str(self) -> &'static str {
                match self {
                    $( $name::$variant => $text ),+
                }
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl ::std::str::FromStr for $name {
            type Err = $crate::UnknownValue;

            fn from_str(text: &str) -> ::std::result::Result<Self, Self::Err> {
                match text {
                    $( $text => Ok($name::$variant), )+
                    _ => Err($crate::UnknownValue {
                        expected: $crate::text_enum!(@list $($text),+),
                    }),
                }
            }
        }

        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                utoipa::openapi::schema::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::Type::String)
                    .enum_values(Some([$($text),+]))
                    .into()
            }
        }

        impl utoipa::ToSchema for $name {
            fn name() -> ::std::borrow::Cow<'static, str> {
                ::std::borrow::Cow::Borrowed(stringify!($name))
            }
        }

        $crate::text_mapping!($name);
    };
    (@list $first:literal $(, $rest:literal)*) => {
        concat!($first $(, ", ", $rest)*)
    };
}

/// Diesel's mapping of a type to a `Text` column through its `Display` and `FromStr`
/// (a value that does not parse is a deserialisation error). [`text_enum!`] uses it; a
/// type of another shape (a scope, `area:access`) uses it directly, with
/// `#[derive(diesel::expression::AsExpression, diesel::deserialize::FromSqlRow)]` and
/// `#[diesel(sql_type = diesel::sql_types::Text)]` on the type. Then the type can be a
/// column of `Queryable` rows and `Vec<T>` a `text[]`.
#[macro_export]
macro_rules! text_mapping {
    ($name:ident) => {
        impl diesel::serialize::ToSql<diesel::sql_types::Text, diesel::pg::Pg> for $name {
            fn to_sql<'b>(
                &'b self,
                out: &mut diesel::serialize::Output<'b, '_, diesel::pg::Pg>,
            ) -> diesel::serialize::Result {
                ::std::io::Write::write_all(out, self.to_string().as_bytes())?;
                Ok(diesel::serialize::IsNull::No)
            }
        }

        impl diesel::deserialize::FromSql<diesel::sql_types::Text, diesel::pg::Pg> for $name {
            fn from_sql(bytes: diesel::pg::PgValue<'_>) -> diesel::deserialize::Result<Self> {
                let text = <String as diesel::deserialize::FromSql<
                    diesel::sql_types::Text,
                    diesel::pg::Pg,
                >>::from_sql(bytes)?;
                Ok(text.parse()?)
            }
        }
    };
}
