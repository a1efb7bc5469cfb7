#include <random>
#include <algorithm>
#include <cstdio>
int main(){ std::mt19937 g(0); unsigned s=0; for(int i=0;i<5;i++) s^=g(); printf("%u\n",s);
 std::mt19937 g2(7); std::uniform_int_distribution<int> d(0,9); int t=0; for(int i=0;i<100;i++) t=t*31+d(g2); printf("%d\n",t);
 std::mt19937 g3(0); std::vector<unsigned> v(11); for(unsigned i=0;i<11;i++) v[i]=i; std::shuffle(v.begin(),v.end(),g3); for(auto x:v) printf("%u ",x); printf("\n");
 std::mt19937 g4(0); std::vector<unsigned> w(12); for(unsigned i=0;i<12;i++) w[i]=i; std::shuffle(w.begin(),w.end(),g4); for(auto x:w) printf("%u ",x); printf("\n");
 // ranges wider than the generator (upscaling): xor of 1000 draws each, seed 3
 unsigned long long ranges[][2]={{0,1ull<<40},{7,(1ull<<63)+12345},{0,~0ull}};
 for(auto &ab:ranges){ std::mt19937 g5(3); std::uniform_int_distribution<unsigned long long> d5(ab[0],ab[1]);
   unsigned long long x=0; for(int i=0;i<1000;i++) x^=d5(g5)+(unsigned long long)i; printf("%llu\n",x);} }
