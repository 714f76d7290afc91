"""What every Billfold app shares and no app owns: the errors the API and the admin map to
answers, the database toolkit of the hot paths, the rules for ids and decimal numbers in
requests, JSON text, and how numbers, amounts and periods read as text. A plain package
without models; every app may import it, it imports none of them."""
